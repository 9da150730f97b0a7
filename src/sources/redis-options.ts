import { z } from 'zod';
import { parseRef, type Ref } from '../config/refs.js';
import { checkPort, checkSocket, CONTROL, type RedisOptions } from './redis-conn.js';
import { optionalString, optionIssue, type OptionsSpec } from './options-schema.js';

/** Literal values are checked now; `Env:`/`File:` values when they are resolved. */
function literal(ref: Ref): string | null {
  return ref.kind === 'literal' || ref.kind === 'text' ? ref.value : null;
}

/** `backer.redis.*`: how redis-cli reaches the server (socket or port) and authenticates. */
export const redisOptions: OptionsSpec<RedisOptions> = {
  type: 'redis',
  keys: ['password', 'user', 'socket', 'port'],
  schema: z
    .object({ password: optionalString(), user: optionalString(), socket: optionalString(), port: optionalString() })
    .transform((o, ctx) => {
      if (o.socket !== undefined && o.port !== undefined) optionIssue(ctx, 'port', 'set either backer.redis.socket or backer.redis.port, not both');
      const socket = o.socket === undefined ? null : parseRef(o.socket);
      const socketValue = socket === null ? null : literal(socket);
      const socketProblem = socketValue === null ? null : checkSocket(socketValue);
      if (socketProblem !== null) optionIssue(ctx, 'socket', socketProblem);
      const port = parseRef(o.port ?? '6379');
      const portValue = literal(port);
      const portProblem = portValue === null ? null : checkPort(portValue);
      if (portProblem !== null) optionIssue(ctx, 'port', portProblem);
      const user = o.user === undefined ? null : parseRef(o.user);
      const userValue = user === null ? null : literal(user);
      if (userValue !== null && (userValue.trim() === '' || CONTROL.test(userValue))) optionIssue(ctx, 'user', 'expected an ACL user name without control characters');
      return { password: o.password === undefined ? null : parseRef(o.password), user, socket, port };
    }),
};
