// A session: one authenticated connection's state, as the core sees it. Plain data; the
// modules of core/ each own some of its fields (noted below).
import type { Permissions } from '../rooms/permissions.js';
import type { Encoding } from '../protocol/messages.js';
import type { Bucket } from './ratelimit.js';
import type { Scheduled } from './expiry.js';

export interface Session<S = unknown> extends Scheduled, Bucket {
  readonly id: string;
  readonly encoding: Encoding;
  readonly protocol: string | undefined;
  readonly userId: string;
  readonly tenantId: string;
  /** ms since epoch */
  readonly since: number;
  /** token id, exp (seconds since epoch) and permissions: replaced by token:refresh */
  jti: string;
  exp: number;
  permissions: readonly string[];
  perms: Permissions;
  /** set at open, cleared at close */
  socket: S | undefined;
  /** room keys (tenant-qualified); core/rooms.ts */
  readonly rooms: Set<string>;
  /** token:expiring sent for the current exp; core/lifetime.ts */
  warned: boolean;
  closed: boolean;
  /** holds a deployment-cap reservation, released at close; core/caps.ts */
  reserved: boolean;
}
