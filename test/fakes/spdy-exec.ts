/**
 * `kubectl exec` and `kubectl attach` over SPDY/3.1 (client-go's remotecommand, the only
 * transport of kubectl < 1.30) for the fake API server; the framing is spdy-codec.ts.
 *
 * Design note: client-go opens one stream per `streamtype` header (error, stdin, stdout,
 * stderr, resize) and waits for a SYN_REPLY to each; the command starts once the streams the
 * query asked for exist. The exit status is written on the error stream (v4 protocol), then
 * every stream is half-closed with FIN and the connection ends.
 */
import type { Duplex } from 'node:stream';
import { controlFrame, readFrames, dataFrame, flagFin, frameType, HeaderBlockReader, HeaderBlockWriter, u32 } from './spdy-codec.js';
import type { ExecCommandHandlers, ExecIo, StreamSession } from './kube-exec.js';

export interface SpdyExecOptions {
  /** The upgraded socket; the 101 answer has already been written. */
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly session: StreamSession;
  /** Called once when the connection ends for any reason. */
  readonly onClose: () => void;
}

/** Runs one exec or attach session over an upgraded SPDY/3.1 connection. */
export function runSpdyExec(options: SpdyExecOptions): void {
  const { socket, session } = options;
  const reader = new HeaderBlockReader();
  const writer = new HeaderBlockWriter();
  const streams = new Map<string, number>();
  let handlers: ExecCommandHandlers | undefined;
  let finished = false;
  let stdinEndedBeforeStart = false;

  const write = (frame: Buffer): void => {
    if (!socket.destroyed && socket.writable) socket.write(frame);
  };
  const writeToStream = (type: string, data: Buffer | string): void => {
    const streamId = streams.get(type);
    if (streamId === undefined) return;
    const payload = Buffer.isBuffer(data) ? data : Buffer.from(data);
    for (let offset = 0; offset < payload.length; offset += 0xffff) write(dataFrame(streamId, 0, payload.subarray(offset, offset + 0xffff)));
  };
  const io: ExecIo = {
    writeStdout: (data) => writeToStream('stdout', data),
    writeStderr: (data) => writeToStream('stderr', data),
    finish: (exitCode) => {
      if (finished) return;
      finished = true;
      writeToStream('error', session.statusJson(exitCode));
      for (const type of ['stdout', 'stderr', 'error']) {
        const streamId = streams.get(type);
        if (streamId !== undefined) write(dataFrame(streamId, flagFin, Buffer.alloc(0)));
      }
      write(controlFrame(frameType.goAway, 0, Buffer.concat([u32(0), u32(0)])));
      socket.end();
    },
  };
  const expectedTypes = ['error', ...(session.stdin ? ['stdin'] : []), ...(session.stdout ? ['stdout'] : []), ...(session.stderr && !session.tty ? ['stderr'] : [])];
  const maybeStart = (): void => {
    if (handlers !== undefined || !expectedTypes.every((type) => streams.has(type))) return;
    handlers = session.start(io);
    if (stdinEndedBeforeStart) handlers.onStdinEnd();
  };

  const handleControl = (type: number, flags: number, payload: Buffer): void => {
    switch (type) {
      case frameType.synStream: {
        const streamId = payload.readUInt32BE(0) & 0x7fffffff;
        const headers = reader.read(payload.subarray(10));
        const streamType = headers.get('streamtype')?.[0] ?? '';
        streams.set(streamType, streamId);
        write(controlFrame(frameType.synReply, 0, Buffer.concat([u32(streamId), writer.write(new Map())])));
        if (streamType === 'stdin' && (flags & flagFin) !== 0) stdinEndedBeforeStart = true;
        maybeStart();
        return;
      }
      case frameType.headers:
        reader.read(payload.subarray(4));
        return;
      case frameType.ping:
        write(controlFrame(frameType.ping, 0, payload));
        return;
      case frameType.goAway:
        socket.end();
        return;
      default:
        // SETTINGS, WINDOW_UPDATE, RST_STREAM: nothing to do for a short exec session.
        return;
    }
  };

  const handleData = (streamId: number, flags: number, payload: Buffer): void => {
    if (streamId !== streams.get('stdin') || handlers === undefined) return;
    if (payload.length > 0) handlers.onStdin(payload);
    if ((flags & flagFin) !== 0) handlers.onStdinEnd();
  };

  readFrames(socket, options.head, { control: handleControl, data: handleData }, options.onClose);
}
