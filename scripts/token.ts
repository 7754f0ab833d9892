// Mints a development token: npm run token -- --sub alice --tenant acme [--permissions "join:**,publish:chat/*"]
//   [--ttl 3600] [--jti id] [--secret S | WSGATE_JWT_SECRET] [--alg HS256] [--iss I] [--aud A]
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
if (!secret || !sub || !tenant) {
  process.stderr.write('usage: npm run token -- --sub USER --tenant TENANT [--permissions "join:**,publish:**,presence:**"] [--ttl SEC] [--secret S]\n(the secret may come from WSGATE_JWT_SECRET)\n');
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
process.stdout.write(sign({ sub, tenant_id: tenant, jti: args.get('jti') ?? randomUUID(), permissions }) + '\n');
