"""The report page's style sheet (one self-contained page, no external files)."""

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 1.2em 2em 1.2em;
       color: #222; font-size: 14px; line-height: 1.35; }
header h1 { font-size: 1.45em; margin: 0.4em 0 0 0; }
.sub { margin: 0.1em 0; color: #555; }
nav.toc { font-size: 0.86em; margin: 0.2em 0 0.5em 0; color: #555; }
nav.toc a { color: #1a5fb4; text-decoration: none; }
h2 { font-size: 1.15em; margin: 1.3em 0 0.4em 0; border-bottom: 1px solid #ccc; }
.box h2 { margin-top: 0; }
h3 { font-size: 1em; margin: 0.8em 0 0.3em 0; }
.first { display: flex; gap: 1em; align-items: flex-start; }
#design { flex: 0 0 470px; }
#summary { flex: 1 1 auto; min-width: 0; }
.box { border: 1px solid #bbb; border-radius: 6px; padding: 0.6em 0.8em; background: #fbfbfb; }
.fig { margin: 0.15em 0; }
.fname { display: inline-block; width: 7.5em; color: #555; }
.fval { font-weight: bold; font-size: 1.15em; font-variant-numeric: tabular-nums; }
.src { display: inline-block; font-size: 0.78em; color: #555; background: #eef2f7; border-radius: 3px;
       padding: 0 0.35em; margin-left: 0.3em; }
.resources { margin: 0.6em 0 0.2em 0; }
.res { display: grid; grid-template-columns: 4.2em 150px auto; column-gap: 0.5em; align-items: center;
       margin: 0.25em 0; }
.res .src { grid-column: 2 / 4; margin: 0; justify-self: start; }
.rname { font-weight: bold; }
.track { position: relative; height: 12px; background: #e4e4e4; border-radius: 2px; }
.fill { position: absolute; left: 0; top: 0; bottom: 0; background: #4a7fc1; border-radius: 2px; }
.res.full .fill { background: #c0392b; }
.limit { position: absolute; left: 80%; top: -2px; bottom: -2px; border-left: 2px solid #333; }
.rfig { font-variant-numeric: tabular-nums; font-size: 0.92em; }
.flag { color: #a11; }
.checks { font-size: 0.86em; margin: 0.3em 0 0 0; }
.acc-row { display: flex; gap: 0.8em; align-items: flex-start; }
table { border-collapse: collapse; margin: 0.3em 0 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.18em 0.4em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.acc { margin: 0; font-size: 0.86em; flex: 0 0 auto; }
table.acc small { color: #777; font-weight: normal; }
tr.baseline th, tr.baseline td { background: #f7f7f2; }
table.inner { margin: 0; font-size: 1em; }
table.inner th, table.inner td { border-color: #e0e0e0; }
dl.defs { margin: 0; font-size: 0.84em; flex: 1 1 10em; min-width: 9em; max-width: 17em; overflow-wrap: anywhere; }
dl.defs dt { font-weight: bold; margin-top: 0.3em; }
dl.defs dd { margin: 0 0 0 0.8em; }
#failed ul { margin: 0.2em 0; padding-left: 1.2em; font-size: 0.88em; }
#failed li { margin: 0.2em 0; }
li.fail b, td.fail { color: #8a1212; }
li.noise b, td.noise { color: #8a5a00; }
td.pass { background: #d9f2d9; color: #185c18; font-weight: bold; text-align: center; }
td.fail { background: #f7d4d4; font-weight: bold; text-align: center; }
td.noise { background: #fbecc8; font-weight: bold; text-align: center; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.4em 0; display: block; }
.note { color: #666; font-size: 0.86em; margin: 0.3em 0; }
code { font-size: 0.92em; }
table.acc th { white-space: nowrap; }
.compact { column-count: 3; column-gap: 1.5em; font-size: 0.95em; }
.compact .k { color: #555; }
.compact div { break-inside: avoid; }
"""
