// The core's SocketPort over uWS WebSockets.
import type { SocketPort } from '../core/ports.js';
import type { Apps, SocketData } from './apps.js';
import type { WebSocket } from './uws.js';

export function uwsPort(apps: Apps): SocketPort<WebSocket<SocketData>> {
  return {
    send: (ws, data, binary) => ws.send(data, binary),
    subscribe: (ws, topic) => void ws.subscribe(topic),
    unsubscribe: (ws, topic) => void ws.unsubscribe(topic),
    end: (ws, code, reason) => ws.end(code, reason),
    publish: (topic, data, binary, exclude) => apps.publish(topic, data, binary, exclude),
    cork: (ws, fn) => void ws.cork(fn),
    buffered: (ws) => ws.getBufferedAmount(),
  };
}
