// Mints a development token: npm run token -- --sub alice --tenant acme [--permissions "join:**,publish:chat/*"]
//   [--ttl 3600] [--jti id] [--secret S | WSGATE_JWT_SECRET] [--alg HS256] [--iss I] [--aud A]
// or a server-API token (docs/API.md#jwt): npm run token -- --sub ops --api-scope wsgate:admin
import { randomUUID } from 'node:crypto';
import { createSigner } from 'fast-jwt';

const args = new Map<string, string>();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (!a.startsWith('--')) continue;
  const eq = a.indexOf('=');
  if (eq !== -1) args.set(a.slice(2, eq), a.slice(eq + 1));
  else args.set(a.slice(2), argv[++i] ?? '');
}
const secret = args.get('secret') ?? process.env.WSGATE_JWT_SECRET?.split(',')[0];
const sub = args.get('sub');
const tenant = args.get('tenant');
const apiScope = args.get('api-scope');
if (!secret || !sub || (!tenant && !apiScope) || (tenant && apiScope)) {
  process.stderr.write(
    'usage: npm run token -- --sub USER --tenant TENANT [--permissions "join:**,publish:**,presence:**"] [--ttl SEC] [--secret S]\n' +
      '       npm run token -- --sub CALLER --api-scope SCOPE [--ttl SEC] [--secret S]   (a server-API token: no tenant)\n' +
      '(the secret may come from WSGATE_JWT_SECRET)\n',
  );
  process.exit(2);
}
const permissions = (args.get('permissions') ?? '*:**').split(',').map((s) => s.trim()).filter(Boolean);
const sign = createSigner({
  key: secret,
  algorithm: (args.get('alg') ?? 'HS256') as 'HS256',
  expiresIn: Number(args.get('ttl') ?? 3600) * 1000,
  ...(args.get('iss') ? { iss: args.get('iss') } : {}),
  ...(args.get('aud') ? { aud: args.get('aud') } : {}),
});
// A server-API token carries the scope and never a tenant: client tokens always carry one (docs/API.md#jwt).
process.stdout.write(sign(apiScope ? { sub, scope: apiScope } : { sub, tenant_id: tenant, jti: args.get('jti') ?? randomUUID(), permissions }) + '\n');
