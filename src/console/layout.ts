/**
 * The page frame every console page shares: document head (title, the one stylesheet), a
 * skip link, the navigation (admin pages only for admins), who is logged in with the logout
 * button, and the message of the last action. Pages hand in their main content as `Html`.
 */
import type { Me } from './api-types.js';
import { html } from './html.js';
import type { Html } from './html.js';
import { CSRF_FIELD } from './security.js';

export const CONSOLE_BASE = '/console';
export const STYLESHEET_PATH = `${CONSOLE_BASE}/assets/console.css`;
/** Named by every page, so browsers do not ask for /favicon.ico (the REST API's 404). */
export const ICON_PATH = `${CONSOLE_BASE}/assets/icon.svg`;

export type NavItem = 'clusters' | 'tokens' | 'users' | 'manage-clusters' | 'providers';

export interface Flash {
  readonly kind: 'error' | 'success';
  readonly message: string;
}

export interface PageFrame {
  readonly title: string;
  /** The logged-in user; absent on the login page. */
  readonly me?: Me | undefined;
  /** The session's CSRF token (for the logout button). */
  readonly csrf?: string | undefined;
  readonly current?: NavItem | undefined;
  readonly flash?: Flash | undefined;
}

const NAV: readonly { readonly item: NavItem; readonly label: string; readonly href: string; readonly admin: boolean }[] = [
  { item: 'clusters', label: 'My clusters', href: `${CONSOLE_BASE}/`, admin: false },
  { item: 'tokens', label: 'My tokens', href: `${CONSOLE_BASE}/tokens`, admin: false },
  { item: 'users', label: 'Users', href: `${CONSOLE_BASE}/admin/users`, admin: true },
  { item: 'manage-clusters', label: 'Clusters', href: `${CONSOLE_BASE}/admin/clusters`, admin: true },
  { item: 'providers', label: 'Providers', href: `${CONSOLE_BASE}/admin/providers`, admin: true },
];

/** The hidden form field with the CSRF token; every state-changing form has one. */
export function csrfField(token: string): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;
}

export function flashMessage(flash: Flash | undefined): Html | undefined {
  if (flash === undefined) return undefined;
  return flash.kind === 'error'
    ? html`<div class="alert error" role="alert">${flash.message}</div>`
    : html`<div class="alert success" role="status">${flash.message}</div>`;
}

function navigation(frame: PageFrame): Html | undefined {
  const me = frame.me;
  if (me === undefined) return undefined;
  const items = NAV.filter((entry) => !entry.admin || me.globalRole === 'admin');
  return html`<nav aria-label="Main"><ul>${items.map(
    (entry) => html`<li><a href="${entry.href}"${entry.item === frame.current ? html` aria-current="page"` : ''}>${entry.label}</a></li>`,
  )}</ul></nav>
  <div class="who"><span>Signed in as <strong>${me.username}</strong>${me.globalRole === 'admin' ? ' (admin)' : ''}</span>
  <form method="post" action="${CONSOLE_BASE}/logout">${csrfField(frame.csrf ?? '')}<button type="submit">Log out</button></form></div>`;
}

/** A whole HTML document. */
export function renderPage(frame: PageFrame, content: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · kubegate</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
<link rel="icon" href="${ICON_PATH}" type="image/svg+xml">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="${CONSOLE_BASE}/">kubegate</a>${navigation(frame)}</header>
<main id="main">
${flashMessage(frame.flash)}
${content}
</main>
</body>
</html>
`.toString();
}
