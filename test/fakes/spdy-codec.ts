/**
 * The minimum of SPDY/3.1 framing the fake API server needs to serve kubectl's SPDY upgrades
 * (exec in spdy-exec.ts, port-forward in spdy-portforward.ts): client-go speaks it through
 * moby/spdystream, the only transport of kubectl < 1.30 and port-forward's inner protocol
 * even when tunnelled over WebSocket.
 *
 * Design note — wire facts this relies on (SPDY draft 3):
 * - Frames have an 8-byte header. Control frames: high bit set, 15-bit version (3), 16-bit
 *   type, 8-bit flags, 24-bit length. Data frames: high bit clear, 31-bit stream id, flags
 *   (0x01 = FIN), 24-bit length.
 * - SYN_STREAM (1): stream id, associated stream id, priority/slot (2 bytes), then a header
 *   block; SYN_REPLY (2): stream id, header block; RST_STREAM (3); SETTINGS (4); PING (6),
 *   echoed back; GOAWAY (7); HEADERS (8); WINDOW_UPDATE (9).
 * - A header block is `count:u32 (len:u32 name len:u32 value)*`, compressed with ONE zlib
 *   stream per direction for the whole connection, primed with the SPDY/3 dictionary.
 * Incoming blocks are inflated by re-inflating everything received so far (blocks are few
 * and tiny, and this keeps the parser synchronous). Outgoing blocks are written as zlib
 * *stored* blocks — valid deflate that needs no compressor state — each followed by the
 * empty stored block a sync flush writes; without it Go's inflater reads past the frame
 * and fails on the next one.
 */
import type { Duplex } from 'node:stream';
import { constants as zlibConstants, inflateSync } from 'node:zlib';

const controlBit = 0x80;
const spdyVersion = 3;
export const flagFin = 0x01;
export const frameType = { synStream: 1, synReply: 2, rstStream: 3, settings: 4, ping: 6, goAway: 7, headers: 8, windowUpdate: 9 } as const;

/** The SPDY/3 header compression dictionary (draft 3, §2.6.10.1): length-prefixed words, then a tail. */
const spdy3Dictionary: Buffer = (() => {
  const words = [
    'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
    'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
    'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag',
    'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
    'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
    'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
    'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie',
    'keep-alive', 'origin',
  ];
  const tail =
    '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
    '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized' +
    '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
    'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
    'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,' +
    'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';
  const parts: Buffer[] = [];
  for (const word of words) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(word.length);
    parts.push(length, Buffer.from(word, 'latin1'));
  }
  parts.push(Buffer.from(tail, 'latin1'));
  return Buffer.concat(parts);
})();

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Inflates the client's header blocks: one zlib stream across all of them. */
export class HeaderBlockReader {
  private compressed: Buffer = Buffer.alloc(0);
  private producedBytes = 0;

  read(block: Buffer): Map<string, string[]> {
    this.compressed = Buffer.concat([this.compressed, block]);
    const all = inflateSync(this.compressed, { dictionary: spdy3Dictionary, finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const plain = all.subarray(this.producedBytes);
    this.producedBytes = all.length;
    return parseHeaderBlock(plain);
  }
}

/** Writes header blocks as stored (uncompressed) deflate blocks inside one zlib stream. */
export class HeaderBlockWriter {
  private started = false;

  write(headers: ReadonlyMap<string, readonly string[]>): Buffer {
    const plain = serializeHeaderBlock(headers);
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      // CMF 0x78 (deflate, 32K window), FLG 0x20 (FDICT; 0x7820 % 31 === 0), then the dictionary id.
      const header = Buffer.alloc(6);
      header[0] = 0x78;
      header[1] = 0x20;
      header.writeUInt32BE(adler32(spdy3Dictionary), 2);
      parts.push(header);
    }
    for (let offset = 0; offset < plain.length; offset += 0xffff) {
      const chunk = plain.subarray(offset, offset + 0xffff);
      parts.push(storedBlockHeader(chunk.length), chunk);
    }
    // An empty stored block ends every header block, as a zlib sync flush does: it makes the
    // peer's inflater hand out the data without reading past this frame.
    parts.push(storedBlockHeader(0));
    return Buffer.concat(parts);
  }
}

/** BFINAL 0, BTYPE 00 (stored) padded to the byte boundary, then LEN and NLEN (little-endian). */
function storedBlockHeader(length: number): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt16LE(length, 1);
  header.writeUInt16LE(~length & 0xffff, 3);
  return header;
}

function parseHeaderBlock(plain: Buffer): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  if (plain.length < 4) throw new Error('SPDY header block too short');
  const count = plain.readUInt32BE(0);
  let offset = 4;
  for (let index = 0; index < count; index += 1) {
    const nameLength = plain.readUInt32BE(offset);
    const name = plain.subarray(offset + 4, offset + 4 + nameLength).toString('utf8');
    offset += 4 + nameLength;
    const valueLength = plain.readUInt32BE(offset);
    const value = plain.subarray(offset + 4, offset + 4 + valueLength).toString('utf8');
    offset += 4 + valueLength;
    headers.set(name, value.split('\u0000'));
  }
  return headers;
}

function serializeHeaderBlock(headers: ReadonlyMap<string, readonly string[]>): Buffer {
  const parts: Buffer[] = [u32(headers.size)];
  for (const [name, values] of headers) {
    const nameBytes = Buffer.from(name, 'utf8');
    const valueBytes = Buffer.from(values.join('\u0000'), 'utf8');
    parts.push(u32(nameBytes.length), nameBytes, u32(valueBytes.length), valueBytes);
  }
  return Buffer.concat(parts);
}

export function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value >>> 0);
  return buffer;
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(0x8000 | spdyVersion, 0);
  header.writeUInt16BE(type, 2);
  header.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([header, payload]);
}

export function dataFrame(streamId: number, flags: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(streamId & 0x7fffffff, 0);
  header.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([header, payload]);
}

export interface SpdyFrameHandlers {
  control(type: number, flags: number, payload: Buffer): void;
  data(streamId: number, flags: number, payload: Buffer): void;
}

/**
 * Reads the connection's frames as they come (`head` first), calling a handler per whole
 * frame; a frame that cannot be parsed destroys the connection. `onClose` runs once.
 */
export function readFrames(socket: Duplex, head: Buffer, handlers: SpdyFrameHandlers, onClose: () => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  const consume = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 8) {
      const length = buffered.readUInt32BE(4) & 0xffffff;
      if (buffered.length < 8 + length) break;
      const flags = buffered[4]!;
      const payload = buffered.subarray(8, 8 + length);
      if ((buffered[0]! & controlBit) !== 0) handlers.control(buffered.readUInt16BE(2), flags, payload);
      else handlers.data(buffered.readUInt32BE(0) & 0x7fffffff, flags, payload);
      buffered = buffered.subarray(8 + length);
    }
  };
  const consumeOrDestroy = (chunk: Buffer): void => {
    try {
      consume(chunk);
    } catch {
      socket.destroy();
    }
  };
  socket.on('data', consumeOrDestroy);
  socket.on('error', () => socket.destroy());
  socket.once('close', onClose);
  if (head.length > 0) consumeOrDestroy(head);
}
