/**
 * HTML for the web console: one tagged template, `html`, that escapes every interpolated
 * value unless it is already HTML made by `html` itself.
 *
 * Design note (why this is safe by construction): there is no way to turn a string into
 * `Html` except through the template, whose literal parts are written in this repository.
 * Every value — user names, cluster IDs, error messages, provider names, group DNs — is
 * text and is escaped (`& < > " '` and the backtick), so it can stand in element content and
 * in quoted attribute values alike. Attribute values must always be quoted in templates.
 * Arrays are joined after escaping each element; `null`, `undefined` and `false` render as
 * nothing, so `${cond && html`…`}` works. Nothing is ever rendered inside `<script>` or
 * `<style>`: the console has no inline script or style (its Content-Security-Policy forbids
 * them), so those contexts do not need handling.
 */

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Text made safe for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (character) => ESCAPES[character] ?? character);
}

/** Only this module holds it, so only the template below can make an `Html`. */
const MINT: unique symbol = Symbol('kubegate console html');

/** A fragment of HTML produced by `html`; its text is already safe to send. */
export class Html {
  readonly #text: string;
  constructor(mint: typeof MINT, text: string) {
    if (mint !== MINT) throw new TypeError('Html fragments are made by the html template only');
    this.#text = text;
  }
  toString(): string {
    return this.#text;
  }
}

/** A value a template may interpolate. */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map((item: HtmlValue) => render(item)).join('');
  return escapeHtml(String(value));
}

/** Builds HTML; every interpolated value is escaped unless it is an `Html` fragment. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  let text = strings[0] ?? '';
  values.forEach((value, index) => {
    text += render(value) + (strings[index + 1] ?? '');
  });
  return new Html(MINT, text);
}
