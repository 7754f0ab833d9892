// The core's SocketPort over uWS WebSockets.
import type { SocketPort } from '../core/ports.js';
import type { TemplatedApp, WebSocket } from './uws.js';

export function uwsPort<D>(app: TemplatedApp): SocketPort<WebSocket<D>> {
  return {
    send: (ws, data, binary) => ws.send(data, binary),
    subscribe: (ws, topic) => void ws.subscribe(topic),
    unsubscribe: (ws, topic) => void ws.unsubscribe(topic),
    end: (ws, code, reason) => ws.end(code, reason),
    // ws.publish reaches every subscriber but the publishing socket itself; uWS v20.30 delivers
    // nothing from a socket that is not subscribed, so it is used only when the sender is.
    publish: (topic, data, binary, exclude) =>
      void (exclude !== undefined && exclude.isSubscribed(topic) ? exclude.publish(topic, data, binary) : app.publish(topic, data, binary)),
    cork: (ws, fn) => void ws.cork(fn),
    buffered: (ws) => ws.getBufferedAmount(),
  };
}
