import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Html, escapeHtml, html } from '../../../src/console/html.js';

describe('console html template', () => {
  it('escapes every interpolated string, because names, groups and messages are end-user input', () => {
    const name = `<script>alert("x")</script>&'\``;
    assert.equal(
      html`<p title="${name}">${name}</p>`.toString(),
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&#96;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&#96;</p>',
    );
  });

  it('cannot be broken out of a quoted attribute or into a tag by any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const out = html`<input value="${text}">${text}`.toString();
        const escaped = escapeHtml(text);
        assert.equal(out, `<input value="${escaped}">${escaped}`);
        assert.ok(!/[<>"'`]/.test(escaped), 'no markup character survives');
        assert.equal(escaped.replace(/&(amp|lt|gt|quot|#39|#96);/g, ''), text.replace(/[&<>"'`]/g, ''));
      }),
    );
  });

  it('keeps fragments made by the template as HTML and escapes each element of an array', () => {
    const items = ['a<b', html`<em>${'c&d'}</em>`];
    assert.equal(html`<li>${items}</li>`.toString(), '<li>a&lt;b<em>c&amp;d</em></li>');
  });

  it('renders null, undefined and false as nothing, and numbers and true as text', () => {
    assert.equal(html`[${null}${undefined}${false}${0}${true}]`.toString(), '[0true]');
  });

  it('has no way to wrap a string as HTML from outside the module', () => {
    assert.throws(() => new Html(Symbol('kubegate console html') as never, '<b>'), TypeError);
    assert.equal(html`${{ toString: () => '<b>' } as unknown as string}`.toString(), '&lt;b&gt;');
  });
});
