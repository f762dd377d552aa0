// How long an idle upstream connection is kept (notary servers, registries' metadata and signature
// pools). undici's default is 4 s: a new GUN after a quiet moment then paid a TLS handshake per
// connection, on 2 cores most of a cold tag (docs/benchmarks.md, "Cold tag (measured)"). Below the
// 60 s idle timeout of common load balancers, so the far end rarely closes a connection just as a
// request goes out on it; a server's `Keep-Alive: timeout=` hint still shortens it (undici).
export const UPSTREAM_KEEP_ALIVE_MS = 30_000;
