import { Agent, request as httpRequest } from 'node:http';
import { connect, type TLSSocket } from 'node:tls';
import { evaluateServerTrust, type CertificateCache, type TrustVerdict } from './trust.ts';

export interface HttpResponse {
  statusCode: number;
  body: Buffer;
}

/** One device's connection to the server: HTTP/1.1 keep-alive over a TLS session the device decided to trust. */
export interface DeviceConnection {
  request(method: 'GET' | 'PUT' | 'POST', path: string, body: Buffer | undefined, headers: Record<string, string>): Promise<HttpResponse>;
  close(): void;
}

export interface DeviceTrust {
  /** Roots the device holds, DER by SHA-256 fingerprint. */
  anchors: ReadonlyMap<string, Buffer>;
  /** With ServerURL pinning, the roots the MDM payload allows. */
  pinned?: ReadonlySet<string>;
}

/** A TLS client identity (mutual TLS), PEM. */
export interface ClientIdentity {
  cert: string;
  key: string;
}

export type ConnectOutcome = { connection: DeviceConnection } | { untrusted: Extract<TrustVerdict, { trusted: false }> };

/** The certificates the server sent, leaf first, as the handshake delivered them. */
function presentedChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert = socket.getPeerCertificate(true);
  while (cert && cert.raw && chain.length < 8) {
    if (chain.some((c) => c.equals(cert.raw))) break;
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * The loopback network between simulated devices and the real HTTPS listener. Every connection is a real TLS
 * handshake (with the device's identity when it uses mutual TLS); the device's own trust decision is taken on what the
 * handshake delivered, at the simulated time, before any request is written.
 */
export class LoopbackNetwork {
  connections = 0;

  constructor(
    private readonly port: number,
    private readonly hostname: string,
    private readonly cache: CertificateCache,
  ) {}

  async connect(trust: DeviceTrust, now: Date, identity?: ClientIdentity): Promise<ConnectOutcome> {
    this.connections++;
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({
        host: '127.0.0.1',
        port: this.port,
        servername: this.hostname,
        // The device checks the chain itself below, at the simulated time; OpenSSL would check it at today's.
        rejectUnauthorized: false,
        ...(identity ?? {}),
      });
      // Requests are written as header and body: without this, Nagle and delayed ACKs add 40 ms to each.
      s.setNoDelay(true);
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    const verdict = evaluateServerTrust(
      { presented: presentedChain(socket), anchors: trust.anchors, pinned: trust.pinned, hostname: this.hostname, now },
      this.cache,
    );
    if (!verdict.trusted) {
      socket.destroy();
      return { untrusted: verdict };
    }
    return { connection: this.#http(socket) };
  }

  #http(socket: TLSSocket): DeviceConnection {
    // One agent per connection that only ever hands out this socket: requests follow each other on it (keep-alive).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let handedOut = false;
    (agent as unknown as { createConnection: () => TLSSocket }).createConnection = () => {
      if (handedOut) throw new Error('the device connection was closed by the server');
      handedOut = true;
      return socket;
    };
    const host = this.hostname;
    return {
      request: (method, path, body, headers) =>
        new Promise<HttpResponse>((resolve, reject) => {
          const req = httpRequest(
            { agent, method, path, host, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end(body);
        }),
      close: () => {
        agent.destroy();
        socket.destroy();
      },
    };
  }
}
