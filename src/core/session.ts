// A session: one authenticated connection's state, as the core sees it. Plain data; the
// modules of core/ each own some of its fields (noted below).
import type { Permissions } from '../rooms/permissions.js';
import type { Encoding } from '../protocol/messages.js';
import type { Bucket } from './ratelimit.js';
import type { RoomSet } from './room-set.js';
export interface Session<S = unknown> extends Bucket {
  readonly id: string;
  readonly encoding: Encoding;
  readonly protocol: string | undefined;
  readonly userId: string;
  readonly tenantId: string;
  /** ms since epoch */
  readonly since: number;
  /** token id, exp and iat (seconds since epoch) and permissions: replaced by token:refresh */
  jti: string;
  exp: number;
  iat: number | undefined;
  permissions: readonly string[];
  perms: Permissions;
  /** set at open, cleared at close */
  socket: S | undefined;
  /** room keys (tenant-qualified): none, one, or a Set (core/room-set.ts); core/rooms.ts */
  rooms: RoomSet;
  /** token:expiring sent for the current exp; core/lifetime.ts */
  warned: boolean;
  closed: boolean;
  /** presence requests waiting for the store; core/rooms.ts */
  presenceWaiting: number;
  /** holds a deployment-cap reservation, released at close; core/caps.ts */
  reserved: boolean;
}
