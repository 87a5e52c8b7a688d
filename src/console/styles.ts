/**
 * The console's one stylesheet, served as `/console/assets/console.css` (the policy allows
 * `style-src 'self'` and nothing inline), and its icon, `/console/assets/icon.svg`. Kept in a module so the build carries it without a
 * copy step. System fonts only: the console fetches nothing from elsewhere.
 */
export const CONSOLE_CSS = `
:root { --fg: #1d2433; --muted: #5b6478; --bg: #f5f6f8; --card: #fff; --line: #d9dde5; --accent: #1f5fbf; --accent-fg: #fff; --danger: #b3261e; --ok: #1e7a3b; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); overflow-wrap: anywhere; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid #f0b400; outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: var(--card); padding: 4px 8px; }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #16213a; color: #fff; flex-wrap: wrap; }
header.top .brand { font-weight: 700; font-size: 18px; color: #fff; text-decoration: none; letter-spacing: .02em; }
header.top nav ul { display: flex; gap: 4px; list-style: none; margin: 0; padding: 0; flex-wrap: wrap; }
header.top nav a { color: #dfe6f5; text-decoration: none; padding: 6px 10px; border-radius: 4px; display: inline-block; }
header.top nav a[aria-current="page"] { background: #2d3d63; color: #fff; }
header.top .who { margin-left: auto; display: flex; gap: 12px; align-items: center; color: #dfe6f5; }
header.top .who form { margin: 0; }
main { max-width: 1100px; margin: 24px auto; padding: 0 24px; }
h1 { font-size: 24px; margin: 0 0 16px; }
h2 { font-size: 18px; margin: 0 0 12px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; margin-bottom: 20px; overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: normal; }
td.text { overflow-wrap: anywhere; min-width: 8em; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
td.actions { white-space: nowrap; }
td.actions form { display: inline; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #e8ebf1; }
.badge.ok { background: #dff3e5; color: var(--ok); } .badge.bad { background: #fbe3e1; color: var(--danger); } .badge.warn { background: #fdf0d5; color: var(--warn); }
form.stack { display: grid; gap: 12px; max-width: 520px; }
form.inline { display: flex; gap: 12px; flex-wrap: wrap; align-items: flex-end; }
label { display: grid; gap: 4px; font-weight: 600; font-size: 14px; }
.field { display: grid; gap: 4px; }
label.check { display: flex; gap: 8px; align-items: center; font-weight: 400; }
fieldset { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
legend { font-weight: 600; font-size: 14px; padding: 0 4px; }
fieldset label { font-weight: 400; display: flex; gap: 6px; align-items: center; }
input[type=text], input[type=password], input[type=url], input[type=email], select, textarea { font: inherit; padding: 7px 9px; border: 1px solid #aab2c2; border-radius: 5px; background: #fff; min-width: 220px; }
textarea { min-height: 110px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.hint { font-weight: 400; font-size: 13px; color: var(--muted); }
button, .button { font: inherit; font-weight: 600; padding: 7px 14px; border-radius: 5px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--danger); border-color: var(--danger); }
header.top button { background: transparent; border-color: #6d7da3; color: #fff; padding: 4px 10px; }
.alert { border-radius: 6px; padding: 10px 14px; margin-bottom: 16px; border: 1px solid; }
.alert.error { background: #fdeceb; border-color: #f1b6b1; color: #7a1812; }
.alert.success { background: #e7f6ec; border-color: #a9dcb8; color: #14532a; }
.secret { display: block; padding: 10px; background: #16213a; color: #f5f6f8; border-radius: 6px; word-break: break-all; user-select: all; }
.login { max-width: 440px; margin: 64px auto; }
.login .providers { display: grid; gap: 8px; margin-top: 12px; }
.empty { color: var(--muted); font-style: italic; }
`;

/** The brand's colours and initial; no script, no external reference. */
export const CONSOLE_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#16213a"/><path d="M10 7v18M10 17l9-9M13 14l8 11" stroke="#fff" stroke-width="3.5" fill="none" stroke-linecap="round"/></svg>`;
