/** The console's one stylesheet, served at /console/assets/console.css (no CDN; works offline). */
export const CONSOLE_CSS = `
:root { --ink: #1d2733; --muted: #5b6775; --line: #d8dee6; --bg: #f6f8fa; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
nav { display: flex; gap: 1rem; align-items: center; padding: .6rem 1.2rem; background: #14202d; color: #fff; flex-wrap: wrap; }
nav a { color: #c9d6e3; text-decoration: none; }
nav a[aria-current="page"] { color: #fff; font-weight: 600; border-bottom: 2px solid #fff; }
nav .brand { font-weight: 700; margin-right: 1rem; }
nav .logout { margin-left: auto; display: flex; gap: .5rem; align-items: center; }
main { padding: 1rem 1.4rem 3rem; max-width: 1400px; }
h1 { font-size: 1.4rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef2f6; font-weight: 600; }
td.empty { color: var(--muted); font-style: italic; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: .8rem; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .7rem .9rem; }
.tile .value { font-size: 1.8rem; font-weight: 700; }
.tile .label { color: var(--muted); }
.tile.bad .value, .bad { color: var(--bad); }
.tile.warn .value, .warn { color: var(--warn); }
.tile.ok .value, .ok { color: var(--ok); }
.muted { color: var(--muted); }
form.inline { display: inline; }
form.card, .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin: 0 0 1rem; max-width: 760px; }
label { display: block; margin: .4rem 0 .2rem; font-weight: 600; }
input[type=text], input[type=password], input[type=number], input[type=search], select, textarea { width: 100%; max-width: 520px; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
button { padding: .35rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; font: inherit; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
.filters { display: flex; gap: .6rem; align-items: end; flex-wrap: wrap; margin-bottom: .8rem; }
.filters label { margin: 0; font-weight: normal; }
.notice { padding: .6rem .8rem; border-radius: 4px; margin: 0 0 1rem; border: 1px solid var(--line); background: #fff; max-width: 900px; }
.notice.error { border-color: var(--bad); color: var(--bad); background: #fff5f5; }
.notice.success { border-color: var(--ok); color: var(--ok); background: #f3fbf5; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; word-break: break-all; }
svg.chart { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
svg.chart text { font: 11px system-ui, sans-serif; fill: var(--ink); }
.qr svg { width: 220px; height: 220px; background: #fff; }
.login { max-width: 360px; margin: 4rem auto; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; background: #fff; border: 1px solid var(--line); padding: .8rem; max-width: 1000px; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
`;
