// lmaczs report: filter, sort and page the explanations of results.csv (data in #lmaczs-data).
// Every text from the data is set with textContent and every link with setAttribute: no HTML is
// ever built from data. Audio is preload="none" and images are loading="lazy", and only one
// page of clips is in the document at a time, so runs with thousands of rows stay responsive.
(function () {
  'use strict';
  const source = document.getElementById('lmaczs-data');
  if (!source) { return; }
  const DATA = JSON.parse(source.textContent);
  const CLIPS_PER_PAGE = 12;
  const ROWS_SHOWN = 6;
  const SORTS = {
    similarity: { key: (r) => r.similarity, dir: -1 },
    masked_similarity: { key: (r) => r.masked_similarity, dir: -1 },
    gap: { key: (r) => gap(r), dir: 1 },
    mask_mean: { key: (r) => r.mask_mean, dir: -1 },
    rank: { key: (r) => r.rank, dir: 1 },
    prompt: { key: (r) => r.prompt.toLowerCase(), dir: 1 },
    method: { key: (r) => r.method, dir: 1 },
    clip: { key: (r) => r.rank, dir: 1 },
  };
  const form = document.getElementById('filters');
  const pager = document.getElementById('pager');
  const list = document.getElementById('clips');
  const count = document.getElementById('count');
  const state = { page: 0, groups: [], expandAll: false };

  function gap(r) {
    return r.similarity === null || r.masked_similarity === null ? null
      : Math.abs(r.similarity - r.masked_similarity);
  }

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) { node.setAttribute(k, v === true ? '' : String(v)); }
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined) { continue; }
      node.append(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return node;
  }

  // a prompt of any length stays a short heading; the whole text is its tooltip
  function short(text, n) { return text.length > n ? `${text.slice(0, n - 1)}…` : text; }
  function fmt(v, digits) { return v === null || v === undefined ? '–' : v.toFixed(digits); }

  function fillSelect(name, values) {
    const select = form.elements[name];
    if (!select) { return; }
    for (const v of values) { select.append(el('option', { value: v }, v || '(none)')); }
    if (values.length < 2) { select.closest('label').hidden = true; }
  }

  function uniq(values) { return Array.from(new Set(values)).sort(); }

  function wanted() {
    const f = form.elements;
    const text = (name) => (f[name] ? f[name].value.trim().toLowerCase() : '');
    return {
      prompt: text('prompt'), clip: text('clip'), method: f.method.value, run: f.run ? f.run.value : '',
      status: f.status.value, sort: f.sort.value,
    };
  }

  function keep(r, w) {
    const clip = DATA.clips[r.clip].name.toLowerCase();
    return (!w.prompt || r.prompt.toLowerCase().includes(w.prompt) || r.label.toLowerCase().includes(w.prompt))
      && (!w.clip || clip.includes(w.clip))
      && (!w.method || r.method === w.method)
      && (!w.run || r.run_id === w.run)
      && (!w.status || (w.status === 'ok' ? r.status === 'ok' : r.status !== 'ok'));
  }

  function byKey(sort) {
    const { key, dir } = SORTS[sort] || SORTS.similarity;
    return (a, b) => {
      const x = key(a);
      const y = key(b);
      if (x === y) { return 0; }
      if (x === null) { return 1; }  // rows without the number go last
      if (y === null) { return -1; }
      return dir * (x < y ? -1 : 1);
    };
  }

  // Clips in the order of their best row under the chosen sort (by name for "clip").
  function group(rows, sort) {
    rows.sort(byKey(sort));
    const groups = new Map();
    for (const r of rows) {
      if (!groups.has(r.clip)) { groups.set(r.clip, []); }
      groups.get(r.clip).push(r);
    }
    const out = Array.from(groups, ([clip, rs]) => ({ clip, rows: rs }));
    if (sort === 'clip') { out.sort((a, b) => DATA.clips[a.clip].name.localeCompare(DATA.clips[b.clip].name)); }
    return out;
  }

  function update() {
    const w = wanted();
    const rows = DATA.rows.filter((r) => keep(r, w));
    state.groups = group(rows, w.sort);
    state.page = 0;
    const n = state.groups.length;
    count.textContent = `${rows.length} of ${DATA.rows.length} shown, ${n} clip${n === 1 ? '' : 's'}`;
    show(0);
  }

  function pageCount() { return Math.max(1, Math.ceil(state.groups.length / CLIPS_PER_PAGE)); }

  function show(page) {
    state.page = Math.min(Math.max(0, page), pageCount() - 1);
    const start = state.page * CLIPS_PER_PAGE;
    list.replaceChildren(...state.groups.slice(start, start + CLIPS_PER_PAGE).map(card));
    if (!state.groups.length) { list.append(el('p', { class: 'empty' }, 'No explanation matches the filters.')); }
    renderPager();
  }

  function renderPager() {
    const n = pageCount();
    const prev = el('button', { type: 'button', disabled: state.page === 0 }, '← previous');
    const next = el('button', { type: 'button', disabled: state.page >= n - 1 }, 'next →');
    prev.addEventListener('click', () => { show(state.page - 1); list.scrollIntoView(); });
    next.addEventListener('click', () => { show(state.page + 1); list.scrollIntoView(); });
    pager.replaceChildren(prev, el('span', {}, ` page ${state.page + 1} of ${n} `), next);
    pager.hidden = n < 2;
  }

  function player(label, src) {
    return el('figure', { class: 'player' }, el('figcaption', {}, label),
      el('audio', { controls: true, preload: 'none', src }));
  }

  function card(g) {
    const clip = DATA.clips[g.clip];
    const head = el('div', { class: 'clip-head' }, el('h3', { class: 'clip-name' }, clip.name));
    if (clip.original) {
      head.append(player('original', clip.original));
    } else if (clip.note) {
      head.append(el('p', { class: 'note' }, clip.note));
    }
    const body = el('div', { class: 'rows' });
    const shown = state.expandAll ? g.rows : g.rows.slice(0, ROWS_SHOWN);
    body.append(...shown.map(rowView));
    if (shown.length < g.rows.length) {
      const more = el('button', { type: 'button', class: 'more' }, `show ${g.rows.length - shown.length} more`);
      more.addEventListener('click', () => { more.replaceWith(...g.rows.slice(shown.length).map(rowView)); });
      body.append(more);
    }
    return el('article', { class: 'clip' }, head, body);
  }

  function rowView(r) {
    if (r.status !== 'ok') {
      return el('div', { class: 'row failed' }, el('p', {}, `${r.method || 'input'} failed: `,
        el('span', { class: 'error' }, r.error || 'no reason recorded')));
    }
    const map = r.map
      ? el('a', { class: 'map', href: r.map, target: '_blank' },
        el('img', { src: r.map, loading: 'lazy', alt: `map of "${short(r.prompt, 80)}"` }))
      : el('div', { class: 'map none' }, 'no map');
    const info = el('div', { class: 'info' },
      el('p', { class: 'prompt' }, el('q', { title: r.prompt }, short(r.prompt, 200)),
        el('span', { class: 'tag method' }, r.method),
        r.rank !== null ? el('span', { class: 'tag' }, `rank ${r.rank}`) : null,
        r.checkpoint === 'random' ? el('span', { class: 'tag random' }, 'RANDOM WEIGHTS') : null),
      numbers(r), origin(r), players(r));
    if (r.missing.length) {
      info.append(el('p', { class: 'note' }, `files missing (moved or deleted): ${r.missing.join(', ')}`));
    }
    return el('div', { class: 'row' }, map, info);
  }

  function numbers(r) {
    const faithful = r.faithful === true ? 'yes' : 'no';
    const cls = r.faithful === true ? 'good' : 'bad';
    return el('p', { class: 'nums' },
      el('span', { title: 'similarity of the clip to the prompt' }, `s ${fmt(r.similarity, 3)}`),
      el('span', { title: 'similarity of the masked clip (what the explanation keeps) to the prompt' },
        `s~ ${fmt(r.masked_similarity, 3)}`),
      el('span', { title: 'mean of the mask' }, `mask mean ${fmt(r.mask_mean, 3)}`),
      r.faithful === null ? null
        : el('span', { class: cls, title: 's~ within the tolerance of s' }, `faithful ${faithful}`));
  }

  function origin(r) {
    const parts = [r.run_id && `run ${r.run_id}`, r.model && `model ${r.model}`,
      r.checkpoint && `checkpoint ${r.checkpoint}`, r.decoder && `decoder ${r.decoder}`,
      r.mask_domain && `mask ${r.mask_domain}`].filter(Boolean);
    return parts.length ? el('p', { class: 'origin' }, parts.join(' · ')) : null;
  }

  function players(r) {
    const box = el('div', { class: 'players' });
    if (r.explanation) { box.append(player('explanation (what the mask keeps)', r.explanation)); }
    if (r.residual) { box.append(player('residual (what it removes)', r.residual)); }
    if (r.mask) { box.append(el('a', { class: 'mask', href: r.mask, download: true }, 'mask.npy')); }
    return box;
  }

  fillSelect('method', uniq(DATA.rows.map((r) => r.method)));
  fillSelect('run', uniq(DATA.rows.map((r) => r.run_id)));
  let timer = null;
  form.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(update, 150); });
  form.addEventListener('submit', (e) => e.preventDefault());
  update();

  // for tests and the console: page through everything
  window.lmaczsReport = {
    pageCount,
    show(page, expandAll) { state.expandAll = Boolean(expandAll); show(page); },
    filter(values) {
      for (const [k, v] of Object.entries(values)) { form.elements[k].value = v; }
      update();
      return state.groups.reduce((n, g) => n + g.rows.length, 0);
    },
  };
}());
