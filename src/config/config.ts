// Configuration: environment variables (WSGATE_*) and CLI flags -> one frozen, typed Config.
// Pure: the caller passes env and argv in; this module never reads process.env itself,
// so tests and the composition root decide where values come from.

export type Algorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA';

export const ALL_ALGORITHMS: readonly Algorithm[] = [
  'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512', 'EdDSA',
];

export type RefusalMode = 'http' | 'close';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly nodeId: string;
  readonly logLevel: LogLevel;
  readonly redisUrl: string | undefined;
  readonly keyPrefix: string;
  readonly jwtSecrets: readonly string[];
  readonly jwtPublicKeyFiles: readonly string[];
  readonly jwksUrl: string | undefined;
  readonly jwksRefreshIntervalMs: number;
  readonly jwksTimeoutMs: number;
  readonly jwtAlgorithms: readonly Algorithm[] | undefined;
  readonly jwtIssuer: readonly string[] | undefined;
  readonly jwtAudience: readonly string[] | undefined;
  readonly jwtClockToleranceSec: number;
  readonly jwtCacheSize: number;
  readonly jwtCacheTtlMs: number;
  readonly jwtCacheMaxBytes: number;
  readonly jwtMaxTtlSec: number;
  readonly tokenQuery: boolean;
  readonly tokenCookie: string | undefined;
  readonly allowedOrigins: readonly string[] | undefined;
  readonly revokedPrefix: string;
  readonly revocationTimeoutMs: number;
  readonly revocationFailOpen: boolean;
  readonly revocationMode: 'mirror' | 'lookup';
  readonly refusalMode: RefusalMode;
  readonly registryFlushMs: number;
  readonly registryTtlSec: number;
  readonly presenceFlushMs: number;
  readonly presenceTtlSec: number;
  readonly presenceNotify: boolean;
  readonly presenceNotifyMaxNames: number;
  readonly maxPayloadBytes: number;
  readonly maxBackpressureBytes: number;
  readonly idleTimeoutSec: number;
  readonly maxRoomsPerConnection: number;
  readonly maxRoomNameLength: number;
  readonly maxPublishBytes: number;
  readonly maxFrameDepth: number;
  readonly maxFrameItems: number;
  readonly tokenExpiringSec: number;
  readonly expirySweepMs: number;
  readonly rateLimit: number;
  readonly rateBurst: number;
  readonly userRoomRate: number;
  readonly userRoomBurst: number;
  readonly userPresenceWaiting: number;
  readonly rateLimitBytes: number;
  readonly rateBurstBytes: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerTenant: number;
  readonly maxPendingUpgrades: number;
  readonly maxPendingPerAddress: number;
  readonly presenceMaxPending: number;
  readonly redisCluster: boolean;
  readonly busChannels: 'room' | 'single';
  readonly deploymentMaxConnectionsPerUser: number;
  readonly deploymentMaxConnectionsPerTenant: number;
  readonly registryMaxPending: number;
  // server API and user revocation (docs/API.md)
  readonly revokedUserPrefix: string;
  /** undefined: no server API */
  readonly adminPort: number | undefined;
  readonly adminHost: string;
  readonly adminKeys: readonly string[];
  readonly adminJwtScope: string | undefined;
  readonly adminRateLimit: number;
  readonly adminRateBurst: number;
  // Operations: TLS, /metrics access, refusal logs
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly tlsPassphrase: string | undefined;
  readonly metricsAccess: MetricsAccess;
  readonly metricsToken: string | undefined;
  readonly refusalLogPerSec: number;
  // Workers and drain (docs/WORKERS.md)
  readonly workers: number | 'auto';
  readonly drainGraceSec: number;
  readonly drainSec: number;
}

/** Who may read GET /metrics on the client port. */
export type MetricsAccess = 'public' | 'token' | 'off';

type Kind =
  | { type: 'int'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'string' }
  | { type: 'list' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'algorithms' }
  | { type: 'url'; protocols: readonly string[]; many?: boolean }
  /** an integer in min..max, or the word auto */
  | { type: 'int-or-auto'; min: number; max: number };

interface Option {
  readonly key: keyof Config;
  readonly env: string;
  readonly kind: Kind;
  readonly def: string | undefined;
  readonly help: string;
}

const int = (min: number, max: number): Kind => ({ type: 'int', min, max });

// One table drives parsing, --help and docs/CONFIGURATION.md.
export const OPTIONS: readonly Option[] = [
  { key: 'port', env: 'WSGATE_PORT', kind: int(0, 65535), def: '8080', help: 'TCP port to listen on (0 picks a free port).' },
  { key: 'host', env: 'WSGATE_HOST', kind: { type: 'string' }, def: '0.0.0.0', help: 'Address to bind.' },
  { key: 'nodeId', env: 'WSGATE_NODE_ID', kind: { type: 'string' }, def: undefined, help: 'Id of this gateway node in the registry and presence (default: hostname-pid-random).' },
  { key: 'logLevel', env: 'WSGATE_LOG_LEVEL', kind: { type: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }, def: 'info', help: 'Log level (pino).' },
  { key: 'redisUrl', env: 'WSGATE_REDIS_URL', kind: { type: 'url', protocols: ['redis:', 'rediss:'], many: true }, def: undefined, help: 'Redis URL. Unset: the embedded single-node store (memory). With WSGATE_REDIS_CLUSTER, one or more seed nodes of the cluster, comma-separated.' },
  { key: 'keyPrefix', env: 'WSGATE_KEY_PREFIX', kind: { type: 'string' }, def: 'wsgate:', help: 'Prefix of the registry and presence keys in Redis.' },
  { key: 'jwtSecrets', env: 'WSGATE_JWT_SECRET', kind: { type: 'list' }, def: undefined, help: 'HMAC secret(s) for HS* tokens, comma-separated, each at least 32 bytes; all are accepted (rotation). No key at all: a random secret is generated for this process (development).' },
  { key: 'jwtPublicKeyFiles', env: 'WSGATE_JWT_PUBLIC_KEY_FILE', kind: { type: 'list' }, def: undefined, help: 'PEM public key file(s) for RS*/PS*/ES*/EdDSA tokens, comma-separated.' },
  { key: 'jwksUrl', env: 'WSGATE_JWKS_URL', kind: { type: 'url', protocols: ['http:', 'https:'] }, def: undefined, help: 'JWKS endpoint; keys are chosen by the token\'s kid, cached, and refetched on an unknown kid.' },
  { key: 'jwksRefreshIntervalMs', env: 'WSGATE_JWKS_MIN_REFRESH_MS', kind: int(0, 86_400_000), def: '30000', help: 'Least time between two JWKS fetches caused by unknown kids (rate limit).' },
  { key: 'jwksTimeoutMs', env: 'WSGATE_JWKS_TIMEOUT_MS', kind: int(1, 60_000), def: '2000', help: 'Timeout of one JWKS fetch.' },
  { key: 'jwtAlgorithms', env: 'WSGATE_JWT_ALGORITHMS', kind: { type: 'algorithms' }, def: undefined, help: 'Allowed JWT algorithms, comma-separated (never "none"). Default: every algorithm the configured keys support.' },
  { key: 'jwtIssuer', env: 'WSGATE_JWT_ISSUER', kind: { type: 'list' }, def: undefined, help: 'Required iss claim (comma-separated for several). Unset: not checked.' },
  { key: 'jwtAudience', env: 'WSGATE_JWT_AUDIENCE', kind: { type: 'list' }, def: undefined, help: 'Required aud claim (comma-separated for several). Unset: not checked.' },
  { key: 'jwtClockToleranceSec', env: 'WSGATE_JWT_CLOCK_TOLERANCE_SEC', kind: int(0, 300), def: '5', help: 'Clock skew tolerated on exp and nbf, in seconds.' },
  { key: 'jwtCacheSize', env: 'WSGATE_JWT_CACHE_SIZE', kind: int(0, 10_000_000), def: '100000', help: 'Verified-token cache entries (0 disables). Reconnect storms of the same tokens hit it.' },
  { key: 'jwtCacheTtlMs', env: 'WSGATE_JWT_CACHE_TTL_MS', kind: int(0, 86_400_000), def: '600000', help: 'Longest time a verified token stays cached (never past its exp).' },
  { key: 'jwtCacheMaxBytes', env: 'WSGATE_JWT_CACHE_MAX_BYTES', kind: int(0, 17_179_869_184), def: '67108864', help: 'Memory the verified-token cache may hold, counted as twice each token\'s length (the token and the claims decoded from it); the oldest entries go first.' },
  { key: 'jwtMaxTtlSec', env: 'WSGATE_JWT_MAX_TTL_SEC', kind: int(1, 31_536_000), def: '86400', help: 'Longest token lifetime accepted: exp may be at most this many seconds after now (a token with exp 1e308 would never expire).' },
  { key: 'tokenQuery', env: 'WSGATE_TOKEN_QUERY', kind: { type: 'bool' }, def: 'true', help: 'Accept the token in the access_token query parameter.' },
  { key: 'tokenCookie', env: 'WSGATE_TOKEN_COOKIE', kind: { type: 'string' }, def: 'wsgate_token', help: 'Cookie that may carry the token (empty disables cookies).' },
  { key: 'allowedOrigins', env: 'WSGATE_ALLOWED_ORIGINS', kind: { type: 'list' }, def: undefined, help: 'Origin allowlist for upgrades, comma-separated ("*" allows any). Unset: any origin, except that a token taken from a cookie needs a listed origin.' },
  { key: 'revokedPrefix', env: 'WSGATE_REVOKED_PREFIX', kind: { type: 'string' }, def: 'revoked:', help: 'Key prefix of revoked token ids: a token is revoked while <prefix><jti> exists.' },
  { key: 'revocationTimeoutMs', env: 'WSGATE_REVOCATION_TIMEOUT_MS', kind: int(1, 60_000), def: '500', help: 'Timeout of a revocation lookup.' },
  { key: 'revocationFailOpen', env: 'WSGATE_REVOCATION_FAIL_OPEN', kind: { type: 'bool' }, def: 'false', help: 'When Redis cannot answer, accept the token (true) instead of refusing with 503 (false).' },
  { key: 'revocationMode', env: 'WSGATE_REVOCATION_MODE', kind: { type: 'enum', values: ['mirror', 'lookup'] }, def: 'mirror', help: 'With Redis: mirror keeps a local copy of the revoked keys, kept exact by Redis client tracking (Redis >= 6): upgrades are decided without a round trip, and a revocation closes open sockets carrying the token (4003); one entry of memory per revoked token. lookup reads <prefix><jti> per upgrade (one MGET per event-loop turn) and checks open sockets only at refresh.' },
  { key: 'refusalMode', env: 'WSGATE_REFUSAL_MODE', kind: { type: 'enum', values: ['http', 'close'] }, def: 'http', help: 'How a refused upgrade is answered: an HTTP status with a JSON body (http), or an accepted socket closed at once with a 4xxx code (close; browsers can read it).' },
  { key: 'registryFlushMs', env: 'WSGATE_REGISTRY_FLUSH_MS', kind: int(10, 60_000), def: '1000', help: 'Interval of the batched connection-registry writes.' },
  { key: 'registryTtlSec', env: 'WSGATE_REGISTRY_TTL_SEC', kind: int(1, 3600), def: '30', help: 'A node\'s registry entries vanish this long after its last heartbeat (crash safety).' },
  { key: 'presenceFlushMs', env: 'WSGATE_PRESENCE_FLUSH_MS', kind: int(10, 60_000), def: '1000', help: 'Interval of the batched presence writes (one pipeline per interval).' },
  { key: 'presenceTtlSec', env: 'WSGATE_PRESENCE_TTL_SEC', kind: int(1, 3600), def: '30', help: 'A node\'s presence entries vanish this long after its last heartbeat.' },
  { key: 'presenceNotify', env: 'WSGATE_PRESENCE_NOTIFY', kind: { type: 'bool' }, def: 'true', help: 'Push batched join/leave notifications to room members.' },
  { key: 'presenceNotifyMaxNames', env: 'WSGATE_PRESENCE_NOTIFY_MAX_NAMES', kind: int(0, 10_000), def: '32', help: 'Users one presence notification names; a room with more joins and leaves in one flush gets counts instead ({counts: {joined, left}}), so what a member receives per flush does not grow with the room.' },
  { key: 'presenceMaxPending', env: 'WSGATE_PRESENCE_MAX_PENDING', kind: int(1, 10_000_000), def: '50000', help: 'Rooms with presence changes buffered while Redis cannot be written. Beyond it the buffer is dropped and the node rewrites its whole presence once Redis answers (notifications of that period are not sent).' },
  { key: 'registryMaxPending', env: 'WSGATE_REGISTRY_MAX_PENDING', kind: int(1, 10_000_000), def: '100000', help: 'Connection-registry changes buffered while Redis cannot be written. Beyond it the buffer is dropped and the node rewrites its whole registry once Redis answers.' },
  { key: 'maxPayloadBytes', env: 'WSGATE_MAX_PAYLOAD_BYTES', kind: int(1024, 16 * 1024 * 1024), def: '65536', help: 'Largest inbound frame; uWS drops a connection that sends a larger one without a close frame (the client sees 1006 on both builds; counted in wsgate_protocol_drops_total).' },
  { key: 'maxBackpressureBytes', env: 'WSGATE_MAX_BACKPRESSURE_BYTES', kind: int(1024, 1024 * 1024 * 1024), def: '262144', help: 'Outbound bytes buffered for one socket: publishes skip a socket over it, and the sweep closes a socket over half of it (4501). With the connection cap it bounds what slow readers can make the node hold.' },
  { key: 'idleTimeoutSec', env: 'WSGATE_IDLE_TIMEOUT_SEC', kind: int(8, 960), def: '120', help: 'Idle sockets are closed after this (uWS sends pings).' },
  { key: 'maxRoomsPerConnection', env: 'WSGATE_MAX_ROOMS', kind: int(1, 100_000), def: '100', help: 'Rooms one connection may be in.' },
  { key: 'maxRoomNameLength', env: 'WSGATE_MAX_ROOM_NAME', kind: int(1, 1024), def: '128', help: 'Longest room name, in bytes.' },
  { key: 'maxPublishBytes', env: 'WSGATE_MAX_PUBLISH_BYTES', kind: int(1, 16 * 1024 * 1024), def: '16384', help: 'Largest publish request, in bytes of the whole frame as received (checked before anything is re-encoded). Over it: PAYLOAD_TOO_LARGE.' },
  { key: 'maxFrameDepth', env: 'WSGATE_MAX_FRAME_DEPTH', kind: int(2, 1000), def: '32', help: 'Containers (arrays, maps) nested in one frame; the request map is level 1, so publish data may nest one level less. Deeper: BAD_REQUEST.' },
  { key: 'maxFrameItems', env: 'WSGATE_MAX_FRAME_ITEMS', kind: int(16, 10_000_000), def: '10000', help: 'Values and map keys in one frame. More: BAD_REQUEST.' },
  { key: 'tokenExpiringSec', env: 'WSGATE_TOKEN_EXPIRING_SEC', kind: int(0, 86_400), def: '60', help: 'Send token:expiring this long before a token\'s exp.' },
  { key: 'expirySweepMs', env: 'WSGATE_EXPIRY_SWEEP_MS', kind: int(10, 60_000), def: '1000', help: 'Granularity of the token expiry sweep (one coarse timer for all sockets); slow consumers are checked on the same sweep.' },
  { key: 'rateLimit', env: 'WSGATE_RATE_LIMIT', kind: int(0, 1_000_000), def: '200', help: 'Frames per second per connection, valid or not (token bucket, charged before a frame is decoded; 0 = unlimited). Over it: RATE_LIMITED replies; flooding on: close 4502.' },
  { key: 'userRoomRate', env: 'WSGATE_USER_ROOM_RATE', kind: int(0, 1_000_000), def: '200', help: 'Room changes (joins and leaves, counted per room) per second per user (tenant + sub) on a node, all its sockets together (0 = unlimited). Over it: RATE_LIMITED. Bounds what a user with many sockets costs the node.' },
  { key: 'userRoomBurst', env: 'WSGATE_USER_ROOM_BURST', kind: int(1, 1_000_000), def: '1000', help: 'Token-bucket size of WSGATE_USER_ROOM_RATE: room changes one user may make at once on a node (a client joining its rooms on several devices).' },
  { key: 'userPresenceWaiting', env: 'WSGATE_USER_PRESENCE_WAITING', kind: int(1, 10_000), def: '16', help: 'Presence requests one user may have waiting for the store on a node, all its sockets together (each socket: 4). Over it: RATE_LIMITED. Keeps one user from holding the node\'s 256 presence read slots.' },
  { key: 'rateBurst', env: 'WSGATE_RATE_BURST', kind: int(1, 1_000_000), def: '400', help: 'Token-bucket size of the per-connection request limit; also the number of refused frames in a row that closes the socket (4502).' },
  { key: 'rateLimitBytes', env: 'WSGATE_RATE_LIMIT_BYTES', kind: int(0, 1024 * 1024 * 1024), def: '1048576', help: 'Inbound bytes per second per connection (token bucket, charged before a frame is decoded; 0 = unlimited).' },
  { key: 'rateBurstBytes', env: 'WSGATE_RATE_BURST_BYTES', kind: int(1024, 1024 * 1024 * 1024), def: '2097152', help: 'Bucket size of the byte limit; at least WSGATE_MAX_PAYLOAD_BYTES.' },
  { key: 'maxConnections', env: 'WSGATE_MAX_CONNECTIONS', kind: int(0, 10_000_000), def: '0', help: 'Connections this node accepts (0 = the open-file limit minus 256 minus WSGATE_MAX_PENDING_UPGRADES). Over it: 503.' },
  { key: 'maxConnectionsPerUser', env: 'WSGATE_MAX_CONNECTIONS_PER_USER', kind: int(0, 10_000_000), def: '0', help: 'Connections one user (tenant + sub) may hold on this node (0 = unlimited). Over it: 429 / close 4508.' },
  { key: 'maxConnectionsPerTenant', env: 'WSGATE_MAX_CONNECTIONS_PER_TENANT', kind: int(0, 10_000_000), def: '0', help: 'Connections one tenant may hold on this node (0 = unlimited). Over it: 429 / close 4508.' },
  { key: 'maxPendingUpgrades', env: 'WSGATE_MAX_PENDING_UPGRADES', kind: int(0, 1_000_000), def: '0', help: 'Sockets that have not completed an upgrade (HTTP requests, upgrades being authenticated) this node holds at once (0 = an eighth of the open-file limit, at most 4096). Over it: new sockets are closed at once (upstream build; see docs/SECURITY.md for the compat build).' },
  { key: 'maxPendingPerAddress', env: 'WSGATE_MAX_PENDING_PER_ADDRESS', kind: int(1, 1_000_000), def: '64', help: 'Sockets one source address may hold before completing an upgrade. Over it: closed at once.' },
  // The server API and user revocation (docs/API.md, docs/REDIS.md#user-revocations).
  { key: 'revokedUserPrefix', env: 'WSGATE_REVOKED_USER_PREFIX', kind: { type: 'string' }, def: 'revoked-user:', help: 'Key prefix of user revocations: <prefix><keyOf(tenant, sub)> holds a time in seconds; the user\'s tokens issued before it (iat), and those without iat, are revoked while the key exists.' },
  { key: 'adminPort', env: 'WSGATE_ADMIN_PORT', kind: int(0, 65535), def: undefined, help: 'Port of the server API (docs/API.md), a listener of its own. Unset: no server API; 0 picks a free port.' },
  { key: 'adminHost', env: 'WSGATE_ADMIN_HOST', kind: { type: 'string' }, def: '127.0.0.1', help: 'Address the server API binds. It speaks plain HTTP: keep it on loopback or a private network.' },
  { key: 'adminKeys', env: 'WSGATE_ADMIN_KEYS', kind: { type: 'list' }, def: undefined, help: 'API keys of the server API, comma-separated (several: rotation), each 32 to 256 printable ASCII characters (openssl rand -base64 32); sent as Authorization: Bearer <key>.' },
  { key: 'adminJwtScope', env: 'WSGATE_ADMIN_JWT_SCOPE', kind: { type: 'string' }, def: undefined, help: 'A scope value that lets a JWT signed by the configured keys call the server API (in its scope or scp claim; it must not carry tenant_id). Unset: API keys only.' },
  { key: 'adminRateLimit', env: 'WSGATE_ADMIN_RATE_LIMIT', kind: int(0, 1_000_000), def: '50', help: 'Server API requests per second per API key or JWT sub (0 = unlimited); failed authentications are limited per address alike. Over it: 429.' },
  { key: 'adminRateBurst', env: 'WSGATE_ADMIN_RATE_BURST', kind: int(1, 1_000_000), def: '100', help: 'Token-bucket size of the server API rate limit.' },
  // Operations: TLS, /metrics access, refusal logs
  { key: 'tlsCertFile', env: 'WSGATE_TLS_CERT_FILE', kind: { type: 'string' }, def: undefined, help: 'PEM certificate file (the chain after it): the listener serves wss:// and https:// only. Needs WSGATE_TLS_KEY_FILE. Both files are read again on SIGHUP, without dropping connections.' },
  { key: 'tlsKeyFile', env: 'WSGATE_TLS_KEY_FILE', kind: { type: 'string' }, def: undefined, help: 'PEM private key file of WSGATE_TLS_CERT_FILE.' },
  { key: 'tlsPassphrase', env: 'WSGATE_TLS_PASSPHRASE', kind: { type: 'string' }, def: undefined, help: 'Passphrase of an encrypted WSGATE_TLS_KEY_FILE.' },
  { key: 'metricsAccess', env: 'WSGATE_METRICS', kind: { type: 'enum', values: ['public', 'token', 'off'] }, def: 'public', help: 'Who may read GET /metrics on the client port: anyone (public), a scraper sending Authorization: Bearer <WSGATE_METRICS_TOKEN> (token), or nobody (off: 404).' },
  { key: 'metricsToken', env: 'WSGATE_METRICS_TOKEN', kind: { type: 'string' }, def: undefined, help: 'The bearer token of WSGATE_METRICS=token, at least 16 characters.' },
  { key: 'refusalLogPerSec', env: 'WSGATE_REFUSAL_LOG_PER_SEC', kind: int(0, 100_000), def: '10', help: 'Refused upgrades logged per second at most (code, reason, source address, token transport; never the token); the next line counts those left out. 0: none.' },
  // Workers and drain (docs/WORKERS.md)
  { key: 'workers', env: 'WSGATE_WORKERS', kind: { type: 'int-or-auto', min: 1, max: 1024 }, def: 'auto', help: 'Worker processes sharing the port (SO_REUSEPORT), one gateway: auto = the cores this process may use (affinity and cgroup quota); 1 = a single process without a supervisor.' },
  { key: 'drainGraceSec', env: 'WSGATE_DRAIN_GRACE_SEC', kind: int(0, 3600), def: '3', help: 'Drain (SIGTERM): seconds between /readyz turning 503 and the listen socket closing, so a load balancer stops sending new connections first.' },
  { key: 'drainSec', env: 'WSGATE_DRAIN_SEC', kind: int(0, 3600), def: '5', help: 'Drain (SIGTERM): seconds over which open connections are closed in batches with 4500 (reconnect), so that clients do not all reconnect at once (0 = all at once).' },
  // Many nodes, one deployment: Redis Cluster, per-room bus channels, deployment-wide caps (docs/REDIS.md).
  { key: 'redisCluster', env: 'WSGATE_REDIS_CLUSTER', kind: { type: 'bool' }, def: 'false', help: 'WSGATE_REDIS_URL names a Redis Cluster (Redis >= 7): every store uses ioredis\' Cluster client, keys used together share a hash tag, the bus uses shard channels (SSUBSCRIBE/SPUBLISH), the revocation mirror tracks every master.' },
  { key: 'busChannels', env: 'WSGATE_BUS_CHANNELS', kind: { type: 'enum', values: ['room', 'single'] }, def: 'room', help: 'Cross-node fan-out: one pub/sub channel per room, subscribed while this node has members in the room, so a node receives only its rooms\' traffic (room); or one channel for the deployment that every node receives whole (single).' },
  { key: 'deploymentMaxConnectionsPerUser', env: 'WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER', kind: int(0, 10_000_000), def: '0', help: 'Connections one user (tenant + sub) may hold across every node (0 = unlimited). With Redis each upgrade then costs one Redis round trip (batched per event-loop turn; docs/REDIS.md#deployment-caps). Over it: 429 / close 4508.' },
  { key: 'deploymentMaxConnectionsPerTenant', env: 'WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_TENANT', kind: int(0, 10_000_000), def: '0', help: 'Connections one tenant may hold across every node (0 = unlimited). Over it: 429 / close 4508.' },
];

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export const flagOf = (env: string): string => '--' + env.slice('WSGATE_'.length).toLowerCase().replace(/_/g, '-');

const splitList = (raw: string): string[] => raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);

function parseValue(opt: Option, raw: string, problems: string[]): unknown {
  const where = `${opt.env} (${flagOf(opt.env)})`;
  const k = opt.kind;
  switch (k.type) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) { problems.push(`${where}: "${raw}" is not an integer`); return undefined; }
      const n = Number(raw);
      if (n < k.min || n > k.max) { problems.push(`${where}: ${n} is outside ${k.min}..${k.max}`); return undefined; }
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      problems.push(`${where}: "${raw}" is not a boolean (true/false)`);
      return undefined;
    }
    case 'string':
      return raw;
    case 'list':
      return splitList(raw);
    case 'enum':
      if (!k.values.includes(raw)) { problems.push(`${where}: "${raw}" is not one of ${k.values.join(', ')}`); return undefined; }
      return raw;
    case 'algorithms': {
      const list = splitList(raw);
      const bad = list.filter((a) => !(ALL_ALGORITHMS as readonly string[]).includes(a));
      if (bad.length > 0) { problems.push(`${where}: unsupported algorithm(s) ${bad.join(', ')} (allowed: ${ALL_ALGORITHMS.join(', ')}; "none" is never allowed)`); return undefined; }
      if (list.length === 0) { problems.push(`${where}: empty algorithm list`); return undefined; }
      return list;
    }
    case 'int-or-auto': {
      if (raw.trim() === 'auto') return 'auto';
      if (!/^\d+$/.test(raw.trim())) { problems.push(`${where}: "${raw}" is not an integer or auto`); return undefined; }
      const n = Number(raw);
      if (n < k.min || n > k.max) { problems.push(`${where}: ${n} is outside ${k.min}..${k.max}`); return undefined; }
      return n;
    }
    case 'url': {
      const urls = k.many ? splitList(raw) : [raw];
      if (urls.length === 0) { problems.push(`${where}: no URL`); return undefined; }
      for (const one of urls) {
        try {
          const u = new URL(one);
          if (!k.protocols.includes(u.protocol)) { problems.push(`${where}: "${redactUrl(one)}" must use ${k.protocols.join(' or ')}`); return undefined; }
        } catch {
          problems.push(`${where}: not a valid URL`);
          return undefined;
        }
      }
      return urls.join(',');
    }
  }
}

/** Removes a password from a URL before it reaches an error message or a log. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable>';
  }
}

export interface ParsedArgs {
  readonly values: Map<string, string>;
  readonly help: boolean;
}

/** Parses `--flag value`, `--flag=value` and bare boolean `--flag`. Unknown flags are problems. */
export function parseArgv(argv: readonly string[], problems: string[]): ParsedArgs {
  const byFlag = new Map(OPTIONS.map((o) => [flagOf(o.env), o] as const));
  const values = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') { help = true; continue; }
    if (!arg.startsWith('--')) { problems.push(`unexpected argument "${arg}"`); continue; }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const opt = byFlag.get(flag);
    if (!opt) { problems.push(`unknown flag ${flag}`); continue; }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (opt.kind.type === 'bool' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) value = 'true';
    else value = argv[++i];
    if (value === undefined) { problems.push(`${flag} needs a value`); continue; }
    values.set(opt.env, value);
  }
  return { values, help };
}

/**
 * Builds the Config. Flags override environment variables. Every problem is collected and
 * thrown together as one ConfigError. `defaults` supplies computed defaults (nodeId).
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = [], defaults: { nodeId: string } = { nodeId: 'node' }): Config {
  const problems: string[] = [];
  const args = parseArgv(argv, problems);
  const out: Record<string, unknown> = {};
  for (const opt of OPTIONS) {
    const raw = args.values.get(opt.env) ?? env[opt.env] ?? opt.def;
    if (raw === undefined || (raw === '' && opt.kind.type !== 'string')) { out[opt.key] = undefined; continue; }
    out[opt.key] = parseValue(opt, raw, problems);
  }
  if (out.nodeId === undefined || out.nodeId === '') out.nodeId = defaults.nodeId;
  if (out.tokenCookie === '') out.tokenCookie = undefined;
  for (const key of ['tlsCertFile', 'tlsKeyFile', 'tlsPassphrase', 'metricsToken'] as const) if (out[key] === '') out[key] = undefined;
  for (const key of ['jwtSecrets', 'jwtPublicKeyFiles'] as const) if (out[key] === undefined) out[key] = [];
  if ((out.jwtIssuer as string[] | undefined)?.length === 0) out.jwtIssuer = undefined;
  if ((out.jwtAudience as string[] | undefined)?.length === 0) out.jwtAudience = undefined;
  if ((out.allowedOrigins as string[] | undefined)?.length === 0) out.allowedOrigins = undefined;
  if (out.adminKeys === undefined) out.adminKeys = [];
  if (out.adminJwtScope === '') out.adminJwtScope = undefined;

  const secrets = out.jwtSecrets as string[];
  secrets.forEach((s, i) => {
    if (Buffer.byteLength(s) < 32) problems.push(`WSGATE_JWT_SECRET: secret #${i + 1} is shorter than 32 bytes`);
  });
  const algs = out.jwtAlgorithms as Algorithm[] | undefined;
  if (algs && secrets.length > 0 && !algs.some((a) => a.startsWith('HS'))) problems.push('WSGATE_JWT_ALGORITHMS allows no HS* algorithm, yet WSGATE_JWT_SECRET is set');
  if (algs && (out.jwtPublicKeyFiles as string[]).length + (out.jwksUrl ? 1 : 0) > 0 && !algs.some((a) => !a.startsWith('HS'))) problems.push('WSGATE_JWT_ALGORITHMS allows no public-key algorithm, yet public keys are configured');
  if (typeof out.rateBurstBytes === 'number' && typeof out.maxPayloadBytes === 'number' && out.rateBurstBytes < out.maxPayloadBytes) problems.push('WSGATE_RATE_BURST_BYTES must be at least WSGATE_MAX_PAYLOAD_BYTES (a frame of the largest size must be able to pass)');
  if (algs && !algs.some((a) => a.startsWith('HS')) && (out.jwtPublicKeyFiles as string[]).length === 0 && !out.jwksUrl) problems.push('WSGATE_JWT_ALGORITHMS allows only public-key algorithms, yet neither WSGATE_JWT_PUBLIC_KEY_FILE nor WSGATE_JWKS_URL is set');
  // The mirror tracks and SCANs every key under WSGATE_REVOKED_PREFIX: a prefix that also covers the
  // gateway's own keys (or is empty: every key in Redis) would load them as revocations, and a jti that
  // names one of them ("nodes") would be refused (found by the red team).
  if (out.revokedPrefix === '') problems.push('WSGATE_REVOKED_PREFIX must not be empty (it would make every key in Redis a revocation)');
  else if (typeof out.keyPrefix === 'string' && typeof out.revokedPrefix === 'string' && (out.keyPrefix.startsWith(out.revokedPrefix) || out.revokedPrefix.startsWith(out.keyPrefix))) {
    problems.push('WSGATE_KEY_PREFIX and WSGATE_REVOKED_PREFIX must not be prefixes of each other');
  }
  adminProblems(out, problems);
  if ((out.tlsCertFile === undefined) !== (out.tlsKeyFile === undefined)) problems.push('WSGATE_TLS_CERT_FILE and WSGATE_TLS_KEY_FILE go together: set both or neither');
  if (out.tlsPassphrase !== undefined && out.tlsKeyFile === undefined) problems.push('WSGATE_TLS_PASSPHRASE is set without WSGATE_TLS_KEY_FILE');
  if (out.metricsAccess === 'token' && out.metricsToken === undefined) problems.push('WSGATE_METRICS=token needs WSGATE_METRICS_TOKEN');
  if (out.metricsToken !== undefined && out.metricsAccess !== 'token') problems.push('WSGATE_METRICS_TOKEN is set but WSGATE_METRICS is not token: set WSGATE_METRICS=token (or unset the token)');
  if (typeof out.metricsToken === 'string' && out.metricsToken.length < 16) problems.push('WSGATE_METRICS_TOKEN must be at least 16 characters');
  if (typeof out.redisUrl === 'string' && out.redisUrl.includes(',') && out.redisCluster !== true) problems.push('WSGATE_REDIS_URL lists several URLs: only the seeds of a cluster (WSGATE_REDIS_CLUSTER=true) may be several');
  // a brace in the prefix would make it the hash tag of every key: the whole deployment in one slot
  if (out.redisCluster === true && typeof out.keyPrefix === 'string' && /[{}]/.test(out.keyPrefix)) problems.push('WSGATE_KEY_PREFIX must not contain { or } on a Redis Cluster (keys carry hash tags of their own)');

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out as unknown as Config);
}

/** The server API's options and the user revocation prefix. */
function adminProblems(out: Record<string, unknown>, problems: string[]): void {
  const userPrefix = out.revokedUserPrefix as string;
  // Redis client tracking refuses overlapping prefixes, and a key under both could not be told apart.
  const overlaps = (a: unknown, b: string): boolean => typeof a === 'string' && (a.startsWith(b) || b.startsWith(a));
  if (userPrefix === '') problems.push('WSGATE_REVOKED_USER_PREFIX must not be empty');
  else {
    if (overlaps(out.revokedPrefix, userPrefix)) problems.push('WSGATE_REVOKED_USER_PREFIX and WSGATE_REVOKED_PREFIX must not be prefixes of each other');
    if (overlaps(out.keyPrefix, userPrefix)) problems.push('WSGATE_REVOKED_USER_PREFIX and WSGATE_KEY_PREFIX must not be prefixes of each other');
  }
  const keys = out.adminKeys as string[];
  keys.forEach((k, i) => {
    if (!/^[\x21-\x7e]{32,256}$/.test(k)) problems.push(`WSGATE_ADMIN_KEYS: key #${i + 1} is not 32 to 256 printable ASCII characters without spaces`);
  });
  const scope = out.adminJwtScope as string | undefined;
  if (scope !== undefined && !/^[\x21-\x7e]{1,256}$/.test(scope)) problems.push('WSGATE_ADMIN_JWT_SCOPE must be one scope value: printable ASCII, no spaces');
  if (out.adminPort === undefined) return;
  if (keys.length === 0 && scope === undefined) problems.push('WSGATE_ADMIN_PORT is set, but neither WSGATE_ADMIN_KEYS nor WSGATE_ADMIN_JWT_SCOPE: nobody could call the server API');
  if (out.adminPort !== 0 && out.adminPort === out.port) problems.push('WSGATE_ADMIN_PORT must differ from WSGATE_PORT (the server API is a listener of its own)');
}

export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

export function helpText(): string {
  const lines = ['Usage: wsgate [flags]', '', 'Every flag has an environment variable; flags win. Values:', ''];
  for (const o of OPTIONS) {
    const def = o.def === undefined ? '' : ` (default: ${o.def === '' ? '""' : o.def})`;
    lines.push(`  ${flagOf(o.env).padEnd(30)} ${o.env}`);
    lines.push(`  ${''.padEnd(30)} ${o.help}${def}`);
  }
  return lines.join('\n') + '\n';
}
