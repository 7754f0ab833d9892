import { describe, expect, it } from 'vitest';
import { ConfigError, flagOf, helpText, loadConfig, OPTIONS } from '../../src/config/config.js';

const SECRET = 'x'.repeat(32);

describe('config', () => {
  it('has the documented defaults and is frozen', () => {
    const c = loadConfig({ WSGATE_JWT_SECRET: SECRET }, [], { nodeId: 'n1' });
    expect(c.port).toBe(8080);
    expect(c.host).toBe('0.0.0.0');
    expect(c.redisUrl).toBeUndefined();
    expect(c.revokedPrefix).toBe('revoked:');
    expect(c.revocationFailOpen).toBe(false);
    expect(c.presenceFlushMs).toBe(1000);
    expect(c.tokenCookie).toBe('wsgate_token');
    expect(c.nodeId).toBe('n1');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads WSGATE_* variables; flags override them', () => {
    const c = loadConfig(
      { WSGATE_PORT: '9000', WSGATE_JWT_SECRET: `${SECRET},${'y'.repeat(40)}`, WSGATE_JWT_ALGORITHMS: 'HS256,RS256', WSGATE_REDIS_URL: 'redis://localhost:6380/2' },
      ['--port', '9100', '--host=127.0.0.1', '--revocation-fail-open', '--jwt-audience', 'a,b'],
    );
    expect(c.port).toBe(9100);
    expect(c.host).toBe('127.0.0.1');
    expect(c.jwtSecrets).toHaveLength(2);
    expect(c.jwtAlgorithms).toEqual(['HS256', 'RS256']);
    expect(c.jwtAudience).toEqual(['a', 'b']);
    expect(c.revocationFailOpen).toBe(true);
    expect(c.redisUrl).toBe('redis://localhost:6380/2');
  });

  it('refuses algorithms no configured key can verify (instead of failing at start with a stack trace)', () => {
    expect(() => loadConfig({ WSGATE_JWT_ALGORITHMS: 'RS256' })).toThrow(ConfigError);
    expect(() => loadConfig({ WSGATE_JWT_ALGORITHMS: 'RS256', WSGATE_JWKS_URL: 'https://keys.example/jwks' })).not.toThrow();
    expect(() => loadConfig({ WSGATE_JWT_ALGORITHMS: 'RS256', WSGATE_JWT_SECRET: SECRET })).toThrow(/no public-key algorithm|only public-key/);
    expect(() => loadConfig({ WSGATE_RATE_BURST_BYTES: '2048', WSGATE_MAX_PAYLOAD_BYTES: '4096', WSGATE_JWT_SECRET: SECRET })).toThrow(/WSGATE_RATE_BURST_BYTES/);
  });

  it('reports every invalid value together', () => {
    let err: ConfigError | undefined;
    try {
      loadConfig({ WSGATE_PORT: '70000', WSGATE_JWT_SECRET: 'short', WSGATE_JWT_ALGORITHMS: 'none,HS256', WSGATE_REDIS_URL: 'http://x', WSGATE_REVOCATION_FAIL_OPEN: 'maybe', WSGATE_REFUSAL_MODE: 'silent' }, ['--nope']);
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = err!.problems.join('\n');
    expect(err!.problems.length).toBe(7);
    expect(text).toMatch(/unknown flag --nope/);
    expect(text).toMatch(/WSGATE_PORT.*outside/);
    expect(text).toMatch(/secret #1 is shorter than 32 bytes/);
    expect(text).toMatch(/"none" is never allowed/);
    expect(text).toMatch(/WSGATE_REDIS_URL.*redis:/);
    expect(text).toMatch(/WSGATE_REVOCATION_FAIL_OPEN.*boolean/);
    expect(text).toMatch(/WSGATE_REFUSAL_MODE.*http, close/);
  });

  it('the server API is off by default; on, it needs a key or a JWT scope, well-formed', () => {
    const off = loadConfig({ WSGATE_JWT_SECRET: SECRET });
    expect([off.adminPort, off.adminHost, off.adminKeys, off.adminJwtScope, off.revokedUserPrefix]).toEqual([undefined, '127.0.0.1', [], undefined, 'revoked-user:']);
    const key = 'k'.repeat(32);
    const on = loadConfig({ WSGATE_JWT_SECRET: SECRET, WSGATE_ADMIN_PORT: '0', WSGATE_ADMIN_KEYS: `${key}, ${'j'.repeat(40)}` });
    expect([on.adminPort, on.adminKeys, on.adminRateLimit, on.adminRateBurst]).toEqual([0, [key, 'j'.repeat(40)], 50, 100]);
    expect(loadConfig({ WSGATE_JWT_SECRET: SECRET, WSGATE_ADMIN_PORT: '9090', WSGATE_ADMIN_JWT_SCOPE: 'wsgate:admin' }).adminJwtScope).toBe('wsgate:admin');
    const problems = (env: Record<string, string>): string[] => {
      try {
        loadConfig({ WSGATE_JWT_SECRET: SECRET, ...env });
        return [];
      } catch (e) {
        return [...(e as ConfigError).problems];
      }
    };
    expect(problems({ WSGATE_ADMIN_PORT: '9090' })).toEqual([expect.stringContaining('nobody could call the server API')]);
    expect(problems({ WSGATE_ADMIN_PORT: '9090', WSGATE_ADMIN_KEYS: 'short' })).toEqual([expect.stringContaining('key #1')]);
    expect(problems({ WSGATE_ADMIN_KEYS: `${'k'.repeat(31)} ${'k'.repeat(10)}` })).toEqual([expect.stringContaining('key #1')]);
    expect(problems({ WSGATE_ADMIN_PORT: '8080', WSGATE_ADMIN_KEYS: key })).toEqual([expect.stringContaining('must differ from WSGATE_PORT')]);
    expect(problems({ WSGATE_ADMIN_JWT_SCOPE: 'a b' })).toEqual([expect.stringContaining('one scope value')]);
    expect(problems({ WSGATE_REVOKED_USER_PREFIX: 'revoked:u:' })).toEqual([expect.stringContaining('WSGATE_REVOKED_PREFIX must not be prefixes')]);
    // the revoked-token prefix must not cover the gateway's own keys, nor they it (the mirror would load them)
    expect(problems({ WSGATE_REVOKED_PREFIX: '' })).toContainEqual(expect.stringContaining('WSGATE_REVOKED_PREFIX must not be empty'));
    expect(problems({ WSGATE_REVOKED_PREFIX: 'w' })).toEqual([expect.stringContaining('WSGATE_KEY_PREFIX and WSGATE_REVOKED_PREFIX must not be prefixes')]);
    expect(problems({ WSGATE_REVOKED_PREFIX: 'wsgate:node' })).toEqual([expect.stringContaining('WSGATE_KEY_PREFIX and WSGATE_REVOKED_PREFIX must not be prefixes')]);
    expect(problems({ WSGATE_REVOKED_PREFIX: 'wsgate:' })).toEqual([expect.stringContaining('WSGATE_KEY_PREFIX and WSGATE_REVOKED_PREFIX must not be prefixes')]);
    expect(problems({ WSGATE_REVOKED_PREFIX: 'rv:' })).toEqual([]);
    expect(problems({ WSGATE_REVOKED_USER_PREFIX: 'wsgate:' })).toEqual([expect.stringContaining('WSGATE_KEY_PREFIX must not be prefixes')]);
    expect(problems({ WSGATE_REVOKED_USER_PREFIX: '' })).toEqual([expect.stringContaining('must not be empty')]);
  });

  it('never echoes a Redis password in an error', () => {
    try {
      loadConfig({ WSGATE_REDIS_URL: 'http://user:hunter2@host' });
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
      return;
    }
    throw new Error('expected a ConfigError');
  });

  it('--help documents every option with its variable and flag', () => {
    const help = helpText();
    for (const o of OPTIONS) {
      expect(help).toContain(o.env);
      expect(help).toContain(flagOf(o.env));
    }
  });
});

describe('config: Redis Cluster, bus channels, deployment caps', () => {
  it('several Redis URLs are the seeds of a cluster, and only of a cluster; a cluster prefix has no braces', () => {
    const seeds = 'redis://a:7000, redis://b:7001';
    expect(loadConfig({ WSGATE_REDIS_URL: seeds, WSGATE_REDIS_CLUSTER: 'true' }).redisUrl).toBe('redis://a:7000,redis://b:7001');
    expect(() => loadConfig({ WSGATE_REDIS_URL: seeds })).toThrow(/only the seeds of a cluster/);
    expect(() => loadConfig({ WSGATE_REDIS_URL: 'redis://a:7000,http://b', WSGATE_REDIS_CLUSTER: 'true' })).toThrow(/must use redis: or rediss:/);
    expect(() => loadConfig({ WSGATE_REDIS_URL: 'redis://a', WSGATE_REDIS_CLUSTER: 'true', WSGATE_KEY_PREFIX: 'ws{x}:' })).toThrow(/must not contain \{ or \}/);
    expect(loadConfig({ WSGATE_REDIS_URL: 'redis://a', WSGATE_KEY_PREFIX: 'ws{x}:' }).keyPrefix).toBe('ws{x}:'); // one Redis: tags mean nothing
  });

  it('defaults: one Redis, per-room channels, no deployment caps', () => {
    const c = loadConfig({});
    expect([c.redisCluster, c.busChannels, c.deploymentMaxConnectionsPerUser, c.deploymentMaxConnectionsPerTenant]).toEqual([false, 'room', 0, 0]);
    expect(() => loadConfig({ WSGATE_BUS_CHANNELS: 'rooms' })).toThrow(/WSGATE_BUS_CHANNELS.*room, single/);
  });
});
