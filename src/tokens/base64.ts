/**
 * Base64 as Rancher writes it in hashes: the standard alphabet without padding (Go's
 * RawStdEncoding). Decoding is strict, unlike Buffer.from(…, 'base64'), which skips
 * characters it does not know: a stored hash with a stray character is corrupt, not
 * "close enough". Padded input is accepted too.
 */

const UNPADDED = /^[A-Za-z0-9+/]*$/;

export function encodeBase64Unpadded(bytes: Uint8Array): string {
  const padded = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let end = padded.length;
  while (end > 0 && padded.charCodeAt(end - 1) === 0x3d /* = */) end--;
  return padded.slice(0, end);
}

/** The bytes `text` encodes, or undefined when it is not standard base64 (padded or not). */
export function decodeBase64Strict(text: string): Buffer | undefined {
  let body = text;
  if (body.endsWith('=')) {
    if (body.length % 4 !== 0) return undefined;
    body = body.endsWith('==') ? body.slice(0, -2) : body.slice(0, -1);
  }
  if (body.length % 4 === 1 || !UNPADDED.test(body)) return undefined;
  return Buffer.from(body, 'base64');
}
