/**
 * `pods/<name>/exec` and `pods/<name>/attach` for the fake API server: a tiny command
 * interpreter, the containers' main process, and the WebSocket transport
 * (`v5.channel.k8s.io`, `v4.channel.k8s.io`) kubectl ≥ 1.30 uses for both.
 *
 * Design note: a transport runs a StreamSession — the streams the query asked for and what
 * they connect to, seen through an ExecIo — so exec and attach share the WebSocket transport
 * here and the SPDY one in spdy-exec.ts, as they share the kubelet's. Exec commands:
 * `echo ARGS…` (prints ARGS and a newline), `cat` (copies stdin to stdout until stdin
 * closes), `exit N` or `sh -c "exit N"`, `sleep …` (runs until the client goes away — for
 * teardown tests); anything else prints an error and exits 127. Attach reaches the
 * container's main process, an echo (see attachSession). The final status travels on the
 * error channel exactly as the kubelet writes it for v4+ protocols, which is what makes
 * kubectl exit with the code.
 * Channel bytes: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, 255 close (v5 only).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

/** `pods/<name>/attach`: the streams to connect to the container's main process. */
export interface AttachRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

/** `pods/<name>/exec`: the same streams, connected to a new process running `command`. */
export interface ExecRequest extends AttachRequest {
  readonly command: readonly string[];
}

export interface ExecIo {
  writeStdout(data: Buffer | string): void;
  writeStderr(data: Buffer | string): void;
  /** Ends the session: the exit status goes on the error channel, then streams close. */
  finish(exitCode: number): void;
}

export interface ExecCommandHandlers {
  onStdin(data: Buffer): void;
  onStdinEnd(): void;
}

/** Starts the command; the transport feeds stdin into the returned handlers. */
function startExecCommand(request: ExecRequest, io: ExecIo): ExecCommandHandlers {
  const [program, ...args] = request.command;
  const idle: ExecCommandHandlers = { onStdin: () => undefined, onStdinEnd: () => undefined };
  switch (program) {
    case 'echo':
      io.writeStdout(`${args.join(' ')}\n`);
      io.finish(0);
      return idle;
    case 'cat':
      if (!request.stdin) {
        io.finish(0);
        return idle;
      }
      return { onStdin: (data) => io.writeStdout(data), onStdinEnd: () => io.finish(0) };
    case 'exit':
      io.finish(Number.parseInt(args[0] ?? '0', 10) || 0);
      return idle;
    case 'sh': {
      const script = args[0] === '-c' ? (args[1] ?? '') : '';
      const exit = /^exit (\d+)$/.exec(script.trim());
      if (exit !== null) {
        io.finish(Number.parseInt(exit[1]!, 10));
        return idle;
      }
      io.writeStderr(`sh: unsupported script in the fake API server\n`);
      io.finish(2);
      return idle;
    }
    case 'sleep':
      return idle;
    default:
      io.writeStderr(`exec: "${program ?? ''}": executable file not found in $PATH\n`);
      io.finish(127);
      return idle;
  }
}

/**
 * One streaming session as a transport runs it: which streams exist (the query's stdin,
 * stdout, stderr, tty) and what they connect to.
 */
export interface StreamSession {
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
  /** Starts what the streams connect to; the transport feeds stdin into the returned handlers. */
  start(io: ExecIo): ExecCommandHandlers;
  /** The error-channel payload once the session ends with `exitCode`. */
  statusJson(exitCode: number): string;
}

/** `exec`: a new process running the requested command. */
export function execSession(request: ExecRequest): StreamSession {
  return {
    ...streamsOf(request),
    start: (io) => startExecCommand(request, io),
    statusJson: (exitCode) => exitStatusJson(request.command, exitCode),
  };
}

/**
 * `attach`: the container's main process, which in the fake echoes its stdin to stdout and
 * never exits by itself. When the client closes stdin the session ends with Success while the
 * process keeps running — what the kubelet does for a container without `stdinOnce`: it
 * detaches, closing the attach's streams. Without stdin the session lasts until the client
 * goes away.
 */
export function attachSession(request: AttachRequest): StreamSession {
  return {
    ...streamsOf(request),
    start: (io) => ({ onStdin: (data) => io.writeStdout(data), onStdinEnd: () => io.finish(0) }),
    statusJson: (exitCode) => exitStatusJson([], exitCode),
  };
}

function streamsOf({ stdin, stdout, stderr, tty }: AttachRequest): Pick<StreamSession, 'stdin' | 'stdout' | 'stderr' | 'tty'> {
  return { stdin, stdout, stderr, tty };
}

/** The error-channel payload for v4+ protocols. */
function exitStatusJson(command: readonly string[], exitCode: number): string {
  if (exitCode === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
  return JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  });
}

export const websocketExecProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/** The subprotocol kube would pick from a client's offer, or undefined when none is supported. */
export function chooseWebsocketProtocol(offered: string | undefined): string | undefined {
  const protocols = (offered ?? '').split(',').map((part) => part.trim());
  return websocketExecProtocols.find((protocol) => protocols.includes(protocol));
}

export interface WebsocketExecOptions {
  readonly request: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly session: StreamSession;
  readonly protocol: string;
  /** Called once when the session ends for any reason. */
  readonly onClose: () => void;
}

/** Owns the ws server used for exec and attach upgrades (noServer mode); close() terminates every session. */
export class WebsocketExecServer {
  private readonly server: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();

  constructor() {
    this.server = new WebSocketServer({
      noServer: true,
      // Protocol choice happens before the upgrade (see chooseWebsocketProtocol); ws only echoes it.
      handleProtocols: (protocols) => websocketExecProtocols.find((protocol) => protocols.has(protocol)) ?? false,
    });
  }

  accept(options: WebsocketExecOptions): void {
    this.server.handleUpgrade(options.request, options.socket, options.head, (ws) => {
      this.sockets.add(ws);
      this.run(ws, options);
    });
  }

  close(): void {
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    this.server.close();
  }

  private run(ws: WebSocket, options: WebsocketExecOptions): void {
    const isV5 = options.protocol === 'v5.channel.k8s.io';
    let finished = false;
    let stdinClosed = false;
    const send = (channel: number, data: Buffer | string): void => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(Buffer.concat([Buffer.from([channel]), Buffer.isBuffer(data) ? data : Buffer.from(data)]));
    };
    const io: ExecIo = {
      writeStdout: (data) => send(1, data),
      writeStderr: (data) => send(2, data),
      finish: (exitCode) => {
        if (finished) return;
        finished = true;
        send(3, options.session.statusJson(exitCode));
        ws.close(1000);
      },
    };
    const handlers = options.session.start(io);
    const closeStdin = (): void => {
      if (stdinClosed) return;
      stdinClosed = true;
      handlers.onStdinEnd();
    };
    ws.on('message', (message: Buffer, isBinary: boolean) => {
      if (!isBinary || message.length === 0) return;
      const channel = message[0];
      const payload = message.subarray(1);
      if (channel === 0 && !stdinClosed) handlers.onStdin(payload);
      else if (channel === 255 && isV5 && payload[0] === 0) closeStdin();
    });
    ws.on('close', () => {
      this.sockets.delete(ws);
      options.onClose();
    });
    ws.on('error', () => ws.terminate());
  }
}
