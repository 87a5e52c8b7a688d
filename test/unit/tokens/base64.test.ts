import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeBase64Strict, encodeBase64Unpadded } from '../../../src/tokens/base64.js';

describe('base64 as Rancher writes it', () => {
  it('encodes without padding, like Go’s RawStdEncoding', () => {
    assert.equal(encodeBase64Unpadded(Buffer.from('a')), 'YQ');
    assert.equal(encodeBase64Unpadded(Buffer.from('ab')), 'YWI');
    assert.equal(encodeBase64Unpadded(Buffer.from('abc')), 'YWJj');
    assert.equal(encodeBase64Unpadded(new Uint8Array([0xfb, 0xff])), '+/8');
  });

  it('encodes a view into a larger buffer without reading outside it', () => {
    const whole = Buffer.from('xxabcxx');
    assert.equal(encodeBase64Unpadded(whole.subarray(2, 5)), 'YWJj');
  });

  it('decodes padded and unpadded input to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const unpadded = encodeBase64Unpadded(bytes);
        const padded = Buffer.from(bytes).toString('base64');
        assert.deepEqual(decodeBase64Strict(unpadded), Buffer.from(bytes));
        assert.deepEqual(decodeBase64Strict(padded), Buffer.from(bytes));
      }),
    );
  });

  it('refuses characters Buffer.from would silently skip, because a corrupt hash must not decode', () => {
    for (const text of ['YW J', 'YW#J', 'YWJ\n', '-_8', 'YWJj=', 'YQ=', 'Y===', 'Y', 'YWJjZ', '=', 'YQ==='] ) {
      assert.equal(decodeBase64Strict(text), undefined, JSON.stringify(text));
    }
  });
});
