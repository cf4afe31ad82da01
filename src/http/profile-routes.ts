import type { FastifyInstance } from 'fastify';
import { ProfileError, type ProfileService } from '../profiles/service.ts';

export const PROFILE_CONTENT_TYPE = 'application/x-apple-aspen-config';

/** Unauthenticated endpoints a device or Apple's enrollment flow reaches before it has an identity. */
export async function profileRoutes(server: FastifyInstance, options: { profiles: ProfileService }): Promise<void> {
  const { profiles } = options;

  server.get('/MDMServiceConfig', async () => profiles.serviceConfig());
  server.get('/mdm/anchors', async () => profiles.anchors());
  server.get('/mdm/trust-profile', async (_request, reply) => {
    const trust = await profiles.trust({ createdBy: 'system' });
    return reply.type(PROFILE_CONTENT_TYPE).header('content-disposition', 'attachment; filename="trust.mobileconfig"').send(trust.body);
  });
  server.get('/mdm/ade/enroll', async (_request, reply) =>
    reply.code(501).send({
      error: 'not-implemented',
      message: 'Automated Device Enrollment profile delivery is not implemented yet; use enrollment links',
    }),
  );
  server.get('/enroll/:token', async (request, reply) => {
    try {
      const profile = await profiles.redeemLink((request.params as { token: string }).token, request.ip);
      return reply
        .type(PROFILE_CONTENT_TYPE)
        .header('content-disposition', 'attachment; filename="enroll.mobileconfig"')
        .header('cache-control', 'no-store')
        .send(profile.body);
    } catch (err) {
      if (err instanceof ProfileError)
        return reply.code(err.status).send({ error: err.status === 404 ? 'not-found' : 'gone', message: err.message });
      throw err;
    }
  });
}
