// The seed's token:refresh, and beyond: same user and tenant, revocation, rooms the new
// permissions no longer allow are left; the new exp governs the next expiry sweeps.
import type { Authenticator } from '../auth/authenticate.js';
import { Close, ReplyError } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import type { RequestId } from '../protocol/messages.js';
import type { ConnectionRegistry, Registrable } from '../registry/registry.js';
import { compilePermissions } from '../rooms/permissions.js';
import { roomOf } from '../rooms/rooms.js';
import { roomList } from './room-set.js';
import type { Outbox } from './outbox.js';
import type { RoomRequests } from './rooms.js';
import type { Session } from './session.js';
import type { Sessions } from './sessions.js';

export class TokenRefresh<S> {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly sessions: Sessions<S>,
    private readonly outbox: Outbox<S>,
    private readonly rooms: RoomRequests<S>,
    private readonly registry: ConnectionRegistry<Registrable>,
    private readonly metrics: Metrics,
  ) {}

  refresh(s: Session<S>, id: RequestId, token: string): void {
    this.authenticator.verifyForRefresh(token).then(
      (r) => {
        if (s.closed) return;
        if (r === 'unavailable') return this.outbox.replyError(s, id, ReplyError.UNAVAILABLE, true);
        if (r === 'invalid') {
          return this.outbox.corked(s, () => {
            this.outbox.replyError(s, id, ReplyError.INVALID_TOKEN);
            this.outbox.end(s, Close.INVALID_TOKEN);
          });
        }
        if (r.sub !== s.userId || r.tenantId !== s.tenantId) return this.outbox.replyError(s, id, ReplyError.USER_MISMATCH, true);
        s.jti = r.jti;
        s.exp = r.exp;
        s.iat = r.iat;
        s.permissions = r.permissions;
        s.perms = compilePermissions(r.permissions);
        s.warned = false; // a token:expiring for the new exp, in time
        this.registry.add(s);
        this.metrics.tokenRefreshes++;
        this.outbox.corked(s, () => {
          const left: string[] = [];
          for (const key of roomList(s.rooms)) {
            const room = roomOf(key);
            if (s.perms.can('join', room)) continue;
            this.rooms.leaveRoom(s, key);
            left.push(room);
          }
          this.outbox.send(s, { type: 'token:refreshed', ref: id, exp: r.exp, permissions: r.permissions, left });
        });
      },
    ).catch((err: unknown) => this.outbox.fail(s, 'refresh', err));
  }
}
