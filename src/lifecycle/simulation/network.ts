import { Agent, request as httpRequest } from 'node:http';
import { connect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
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
  for (let cert = socket.getPeerX509Certificate(); cert && chain.length < 8; cert = cert.issuerCertificate) {
    if (chain.some((c) => c.equals(cert!.raw))) break;
    chain.push(cert.raw);
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
  /**
   * A device keeps its TLS client context as long as its identity (a real device does not rebuild its keychain item
   * per connection); devices without an identity on the wire share one.
   */
  readonly #contexts = new WeakMap<ClientIdentity, SecureContext>();
  #anonymous?: SecureContext;

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
        secureContext: this.#context(identity),
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

  #context(identity: ClientIdentity | undefined): SecureContext {
    if (!identity) return (this.#anonymous ??= createSecureContext({}));
    let context = this.#contexts.get(identity);
    if (!context) this.#contexts.set(identity, (context = createSecureContext(identity)));
    return context;
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
