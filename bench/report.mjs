// The report of bench/run.mjs: ratios of ferry to each peer, a Markdown table
// of the absolute figures with those ratios, and an SVG bar chart of the
// ratios. Pure functions of the run's result object. Plain Node ESM.

import { fmtS } from './lib.mjs';

/** SCENARIOS are the one-shot sync figures, in table order. */
export const SCENARIOS = [
  { key: 'initial', label: 'initial sync' },
  { key: 'noop', label: 'no-op resync' },
  { key: 'change', label: 'one file changed' },
];

/** TREES are the standard trees, in table order. */
export const TREES = ['small', 'large', 'huge-tree'];

/**
 * RATIO_COLUMNS pairs ferry with each peer: `ferry` is the ferry cell that is
 * compared with `peer` (ferry over ssh with the ssh peers), `watchFerry` and
 * `watchPeer` the same for the watch-mode rows.
 */
export const RATIO_COLUMNS = [
  { key: 'cp', header: '÷ cp -a', ferry: 'ferry', peer: 'cp', color: '#7f7f7f' },
  { key: 'rsync', header: '÷ rsync -a', ferry: 'ferry', peer: 'rsync', color: '#1f77b4' },
  { key: 'unison', header: '÷ unison', ferry: 'ferry', peer: 'unison', watchFerry: 'ferry-watch', watchPeer: 'unison-watch', color: '#ff7f0e' },
  { key: 'rsync-ssh', header: '÷ rsync -a (ssh)', ferry: 'ferry-ssh', peer: 'rsync-ssh', color: '#9ecae1' },
  { key: 'unison-ssh', header: '÷ unison (ssh)', ferry: 'ferry-ssh', peer: 'unison-ssh', color: '#fdd0a2' },
  { key: 'lsyncd', header: '÷ lsyncd', watchFerry: 'ferry-watch', watchPeer: 'lsyncd', color: '#2ca02c' },
];

const mib = (kb) => (kb / 1024).toFixed(1);
const ms = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** shortReason turns a cell's status ("missing (rsync: …)", "not available: …") into its first words. */
function shortReason(status) {
  return /^[^(:]*/.exec(status)[0].trim();
}

/**
 * ratioOf divides ferry's figure by the peer's. It returns { ratio } or
 * { why } (a short reason, e.g. "unison missing"), or undefined when the
 * pair does not apply (cp -a has no resync).
 */
function ratioOf(ferryCell, peerCell, pick, peerLabel) {
  if (peerCell === undefined || peerCell.notApplicable) return undefined;
  const f = ferryCell?.status === undefined ? pick(ferryCell) : undefined;
  const p = peerCell.status === undefined ? pick(peerCell) : undefined;
  if (f === undefined) return { why: ferryCell?.status ? `ferry ${shortReason(ferryCell.status)}` : 'no ferry data' };
  if (p === undefined) return { why: peerCell.status ? `${peerLabel} ${shortReason(peerCell.status)}` : `no ${peerLabel} data` };
  if (p === 0) return f === 0 ? { why: 'both 0' } : { why: `${peerLabel} 0` };
  return { ratio: f / p };
}

/**
 * ratioRows computes every ratio of ferry to a peer: one row per figure
 * ({ group, figure, cells: { [column key]: { ratio } | { why } } }), the
 * rows of the summary table and the bars of the chart.
 */
export function ratioRows(result) {
  const rows = [];
  const label = (key) => result.tools[key]?.label ?? key;
  for (const [group, pick, what] of [
    ['time', (c) => c.seconds?.median, ''],
    ['peak RSS', (c) => c.rssKB?.median, 'peak RSS, '],
  ]) {
    for (const tree of TREES) {
      for (const s of SCENARIOS) {
        const cells = {};
        const byTool = result.sync[tree]?.[s.key] ?? {};
        for (const col of RATIO_COLUMNS) {
          if (!col.peer) continue;
          const r = ratioOf(byTool[col.ferry], byTool[col.peer], pick, label(col.peer));
          if (r) cells[col.key] = r.ratio === undefined && group === 'peak RSS' && result.rssUnavailable ? { why: '/usr/bin/time missing' } : r;
        }
        rows.push({ group, figure: `${what}${s.label}, ${tree}`, cells });
      }
    }
  }
  for (const [figure, pick] of [
    ['propagation latency p50, watch mode', (c) => c.latencyMs?.p50],
    ['propagation latency p99, watch mode', (c) => c.latencyMs?.p99],
    ['idle CPU while watching', (c) => c.idleCpuPercent],
    ['peak RSS while watching', (c) => c.peakRssKB],
  ]) {
    const cells = {};
    for (const col of RATIO_COLUMNS) {
      if (!col.watchPeer) continue;
      cells[col.key] = ratioOf(result.watch[col.watchFerry], result.watch[col.watchPeer], pick, label(col.watchPeer));
    }
    rows.push({ group: 'watch', figure, cells });
  }
  return rows;
}

const cellText = (c) => (c === undefined ? '—' : c.ratio !== undefined ? c.ratio.toFixed(2) : `n/a (${c.why})`);
const escapeMd = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** statText formats { median, min, max, n } with a unit, e.g. "3.60 s [2.40–6.91] (n=5)", and a note on n. */
function statText(st, f, unit, note) {
  const n = `(n=${st.n}${note ? `: ${note}` : ''})`;
  if (st.n === 1) return `${f(st.median)} ${unit} ${n}`;
  return `${f(st.median)} ${unit} [${f(st.min)}–${f(st.max)}] ${n}`;
}

/** markdownReport renders the whole report; svgName is the chart's file name, next to the .md. */
export function markdownReport(result, ratios, svgName) {
  const { tools } = result;
  const out = [];
  const mode = result.mode === 'full' ? 'full run' : `--${result.mode} run`;
  out.push(`# ferry and its peers: ${result.date}, ${result.host} (${mode})`, '');
  if (result.mode !== 'full') out.push(`A --${result.mode} run: small trees and few repetitions, to check the suite works. Its figures say little about ferry's performance.`, '');
  out.push(
    `Trees: ${TREES.map((t) => `**${t}** ${result.trees[t]?.description ?? 'not run'}`).join('; ')}. ` +
      `Sync figures: median [min–max] of n runs, each a whole process timed from start to exit. ` +
      `Watch figures: the small tree, ${result.writes} writes of 4 KiB. Method and machine below.`,
    '',
  );

  out.push('## Ratios: ferry ÷ peer', '');
  out.push(
    "Each cell is ferry's median divided by the peer's: ferry (local) against the local peers, ferry over ssh against the peers over ssh, " +
      '`ferry sync --watch` against the watchers. Below 1.00, ferry is faster (or smaller); above, the peer is. ' +
      '"n/a" says which side has no figure and why; "—" means the pair does not apply.',
    '',
    `![ferry ÷ peer](${svgName})`,
    '',
  );
  out.push(`| figure | ${RATIO_COLUMNS.map((c) => c.header).join(' | ')} |`, `| --- | ${RATIO_COLUMNS.map(() => '---').join(' | ')} |`);
  for (const row of ratios) out.push(`| ${row.figure} | ${RATIO_COLUMNS.map((c) => escapeMd(cellText(row.cells[c.key]))).join(' | ')} |`);
  out.push('');

  out.push('## Absolute figures', '');
  out.push(
    'Peak RSS is "Maximum resident set size" from `/usr/bin/time -v`: the largest single process among the command and its children ' +
      '(for the ssh rows that is the host side only: the sshd, agent, rsync or unison server in the guest is not counted). ' +
      '"ferry ÷ this" compares with ferry over the same transport.',
    '',
    '| figure | tool | median [min–max] (n) | ferry ÷ this | peak RSS, median [min–max] | ferry ÷ this (RSS) |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  const ferryFor = (key) => (tools[key].over === 'ssh' ? 'ferry-ssh' : 'ferry');
  for (const tree of TREES) {
    for (const s of SCENARIOS) {
      const byTool = result.sync[tree]?.[s.key] ?? {};
      for (const [key, cell] of Object.entries(byTool)) {
        const figure = `${s.label}, ${tree}`;
        if (cell.status !== undefined) {
          out.push(`| ${figure} | ${tools[key].label} | ${escapeMd(cell.status)} | | | |`);
          continue;
        }
        const isFerry = key === ferryFor(key);
        const ferry = byTool[ferryFor(key)];
        const time = ratioOf(ferry, cell, (c) => c.seconds?.median, tools[key].label);
        const rss = ratioOf(ferry, cell, (c) => c.rssKB?.median, tools[key].label);
        out.push(
          `| ${figure} | ${tools[key].label} | ${statText(cell.seconds, fmtS, 's', cell.note)} | ${isFerry ? '' : escapeMd(cellText(time))} | ` +
            `${cell.rssKB ? statText(cell.rssKB, mib, 'MiB') : escapeMd(result.rssUnavailable ?? '—')} | ${isFerry || !cell.rssKB ? '' : escapeMd(cellText(rss))} |`,
        );
      }
    }
  }
  const ferryWatch = result.watch['ferry-watch'];
  for (const [key, cell] of Object.entries(result.watch)) {
    const label = tools[key].label;
    const isFerry = key === 'ferry-watch';
    if (cell.status !== undefined) {
      out.push(`| propagation latency, watch mode | ${label} | ${escapeMd(cell.status)} | | | |`);
      out.push(`| idle CPU while watching | ${label} | ${escapeMd(cell.status)} | | | |`);
      continue;
    }
    const p50 = ratioOf(ferryWatch, cell, (c) => c.latencyMs?.p50, label);
    const p99 = ratioOf(ferryWatch, cell, (c) => c.latencyMs?.p99, label);
    const cpu = ratioOf(ferryWatch, cell, (c) => c.idleCpuPercent, label);
    const rss = ratioOf(ferryWatch, cell, (c) => c.peakRssKB, label);
    const l = cell.latencyMs;
    out.push(
      `| propagation latency, watch mode | ${label} | p50 ${ms(l.p50)} ms · p99 ${ms(l.p99)} ms [${ms(l.min)}–${ms(l.max)}] (n=${l.n} writes${cell.timeouts ? `, ${cell.timeouts} timed out` : ''}) | ` +
        `${isFerry ? '' : `p50 ${cellText(p50)} · p99 ${cellText(p99)}`} | ${mib(cell.peakRssKB)} MiB (peak, VmHWM) | ${isFerry ? '' : escapeMd(cellText(rss))} |`,
    );
    out.push(`| idle CPU while watching | ${label} | ${cell.idleCpuPercent.toFixed(2)} % of one core over ${cell.idleSeconds.toFixed(0)} s | ${isFerry ? '' : escapeMd(cellText(cpu))} | | |`);
  }
  out.push('');

  out.push('## Machine and method', '');
  for (const note of result.notes) out.push(`- ${note}`);
  out.push('');
  return out.join('\n');
}

const escapeXml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * ratioChartSvg draws the ratios as horizontal bars on a log2 scale, each
 * starting at the line at 1.0: a bar to the left means ferry is faster or
 * smaller than that peer, to the right slower or larger. A ratio with no
 * figure is written out ("n/a: …") where its bar would be.
 */
export function ratioChartSvg(ratios, title) {
  const labelWidth = 300;
  const plotWidth = 460;
  const rightPad = 150;
  const barHeight = 11;
  const top = 74;
  const values = ratios.flatMap((r) => Object.values(r.cells).map((c) => c.ratio)).filter((x) => x !== undefined && x > 0);
  // a domain of whole powers of two that holds every ratio, at least [1/4, 4]
  const lo = Math.max(-6, Math.min(-2, Math.floor(Math.log2(Math.min(...values, 1)))));
  const hi = Math.min(6, Math.max(2, Math.ceil(Math.log2(Math.max(...values, 1)))));
  const x = (ratio) => labelWidth + ((Math.min(hi, Math.max(lo, Math.log2(ratio))) - lo) / (hi - lo)) * plotWidth;

  const body = [];
  let y = top;
  let group;
  for (const row of ratios) {
    if (row.group !== group) {
      group = row.group;
      y += 8;
      body.push(`<text x="8" y="${y + 12}" font-weight="bold">${escapeXml(group === 'time' ? 'time' : group === 'watch' ? 'watch mode' : group)}</text>`);
      y += 20;
    }
    const bars = RATIO_COLUMNS.filter((c) => row.cells[c.key] !== undefined);
    if (bars.length === 0) continue;
    const rowTop = y;
    for (const col of bars) {
      const cell = row.cells[col.key];
      const textY = y + barHeight - 3;
      if (cell.ratio === 0) {
        // ferry measured zero (idle CPU): no bar on a log scale
        body.push(`<text x="${(x(1) + 3).toFixed(1)}" y="${textY}" font-size="9">${escapeXml(`${col.header.replace('÷ ', '')}: 0 (ferry at 0)`)}</text>`);
      } else if (cell.ratio !== undefined) {
        const [a, b] = [x(1), x(cell.ratio)].sort((p, q) => p - q);
        const clipped = Math.log2(cell.ratio) < lo || Math.log2(cell.ratio) > hi;
        body.push(`<rect x="${a.toFixed(1)}" y="${y}" width="${Math.max(1, b - a).toFixed(1)}" height="${barHeight - 2}" fill="${col.color}"><title>${escapeXml(`${row.figure}, ferry ${col.header}: ${cell.ratio.toFixed(3)}`)}</title></rect>`);
        // the value goes right of the bar, or right of the line at 1 for a bar to its left (clear of the row labels)
        body.push(`<text x="${((cell.ratio >= 1 ? b : x(1)) + 3).toFixed(1)}" y="${textY}" font-size="9">${cell.ratio.toFixed(2)}${clipped ? ' (off scale)' : ''}</text>`);
      } else {
        body.push(`<text x="${(x(1) + 3).toFixed(1)}" y="${textY}" font-size="9" fill="#888">${escapeXml(`${col.header.replace('÷ ', '')}: n/a (${cell.why})`)}</text>`);
      }
      y += barHeight;
    }
    body.push(`<text x="${labelWidth - 8}" y="${((rowTop + y) / 2 + 4).toFixed(1)}" text-anchor="end">${escapeXml(row.figure)}</text>`);
    y += 6;
  }
  const height = y + 30;

  const grid = [];
  for (let e = lo; e <= hi; e++) {
    const gx = x(2 ** e).toFixed(1);
    const tick = e >= 0 ? String(2 ** e) : `1/${2 ** -e}`;
    grid.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${y}" stroke="${e === 0 ? '#000' : '#ddd'}" stroke-width="${e === 0 ? 1.5 : 1}"/>`);
    grid.push(`<text x="${gx}" y="${y + 14}" text-anchor="middle" font-size="10">${tick}</text>`);
  }
  const legend = RATIO_COLUMNS.map((c, i) => {
    const lx = 8 + i * 150;
    return `<rect x="${lx}" y="42" width="12" height="10" fill="${c.color}"/><text x="${lx + 16}" y="51" font-size="11">${escapeXml(c.header.replace('÷ ', 'ferry ÷ '))}</text>`;
  });
  const width = labelWidth + plotWidth + rightPad;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="8" y="34" font-size="11" fill="#444">ferry's median ÷ the peer's, log scale; left of the line at 1: ferry is faster or smaller</text>`,
    ...legend,
    ...grid,
    ...body,
    `<text x="${x(1).toFixed(1)}" y="${y + 26}" text-anchor="middle" font-size="10">ferry ÷ peer</text>`,
    '</svg>',
    '',
  ].join('\n');
}
