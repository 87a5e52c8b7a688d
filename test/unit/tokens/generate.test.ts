import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseToken } from '../../../src/tokens/format.js';
import { generateToken } from '../../../src/tokens/generate.js';

describe('generateToken', () => {
  it('makes a t- name with 12 lower-case base32 characters, so kubegate tokens are told apart from Rancher ones', () => {
    const { name } = generateToken();
    assert.match(name, /^t-[a-z2-7]{12}$/);
  });

  it('makes a secret of at least 256 random bits in a header- and URL-safe alphabet', () => {
    const { secret } = generateToken();
    assert.match(secret, /^[a-z2-7]+$/);
    assert.ok(secret.length * 5 >= 256, `secret has only ${secret.length * 5} bits`);
  });

  it('joins name and secret with a colon into a token that parses back', () => {
    const generated = generateToken();
    assert.equal(generated.token, `${generated.name}:${generated.secret}`);
    assert.deepEqual(parseToken(generated.token), { name: generated.name, secret: generated.secret });
  });

  it('never repeats a name or a secret across many tokens, because both are random', () => {
    const names = new Set<string>();
    const secrets = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const { name, secret } = generateToken();
      names.add(name);
      secrets.add(secret);
    }
    assert.equal(names.size, 2000);
    assert.equal(secrets.size, 2000);
  });

  it('uses every base32 character about equally often, because a biased alphabet would weaken the secret', () => {
    const counts = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < 2000; i++) {
      for (const character of generateToken().secret) {
        counts.set(character, (counts.get(character) ?? 0) + 1);
        total++;
      }
    }
    assert.equal(counts.size, 32);
    const expected = total / 32;
    for (const [character, count] of counts) {
      assert.ok(Math.abs(count - expected) < expected * 0.1, `${character} appears ${count} times, expected about ${expected}`);
    }
  });
});
