// The results page: preact + htm, bundled by esbuild when `labeler ui` starts.
// Every view reads its filter from the URL's hash, so any view can be linked to.
import htm from 'htm';
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';

const html = htm.bind(h);

/** `#/view?a=1&b=2` → { view, params } */
function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [view, query = ''] = hash.split('?');
  return { view: view || 'gallery', params: new URLSearchParams(query) };
}

function link(view, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  const s = q.toString();
  return `#/${view}${s ? `?${s}` : ''}`;
}

async function api(path, init) {
  const res = await fetch(`/api/${path}`, init);
  const body = await res.json();
  if (!res.ok) throw new Error(`${body.error?.code ?? res.status}: ${body.error?.message ?? res.statusText}`);
  return body;
}

/** Loads `path` whenever it changes; `again` reloads it. */
function useApi(path) {
  const [state, setState] = useState({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    api(path).then(
      (data) => live && setState({ data }),
      (error) => live && setState({ error: error.message }),
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  return { ...state, again: () => setTick((t) => t + 1) };
}

const percent = (score) => `${(score * 100).toFixed(1)} %`;

function Status({ state }) {
  if (state.error) return html`<p class="error" role="alert">${state.error}</p>`;
  if (state.loading && !state.data) return html`<p aria-live="polite">Loading…</p>`;
  return null;
}

function App({ config }) {
  const [where, setWhere] = useState(route());
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const { view, params } = where;
  const views = {
    gallery: Gallery,
    image: ImageView,
    jobs: Jobs,
    failures: Failures,
    histogram: Histogram,
    evaluate: Evaluate,
    compare: Compare,
  };
  const View = views[view] ?? NotFound;
  const nav = [
    ['gallery', 'Gallery'],
    ['jobs', 'Jobs'],
  ];
  return html`
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      document.getElementById('main')?.focus();
    }}>Skip to content</a>
    <header>
      <h1>Labeler results</h1>
      <nav aria-label="Views">
        ${nav.map(
          ([v, text]) => html`<a href=${link(v)} aria-current=${view === v ? 'page' : undefined}>${text}</a>`,
        )}
      </nav>
      <span class="stack">stack ${config.stack.name} · ${config.model.id}@${config.model.version}</span>
    </header>
    <main id="main" tabindex="-1">
      <${View} params=${params} config=${config} key=${`${view}?${params}`} />
    </main>
  `;
}

function NotFound() {
  return html`<h2>Not found</h2><p><a href="#/gallery">Go to the gallery</a></p>`;
}

function Gallery({ params, config }) {
  const label = params.get('label') ?? '';
  const min = params.get('min') ?? '';
  const prefix = params.get('prefix') ?? '';
  const limit = params.get('limit') ?? '';
  const cursor = params.get('cursor') ?? '';
  const byLabel = label !== '';
  const path = byLabel
    ? `labels?${new URLSearchParams({ label, minScore: min || '0', ...(limit ? { limit } : {}), ...(cursor ? { cursor } : {}) })}`
    : `images?${new URLSearchParams({ prefix, ...(limit ? { limit } : {}), ...(cursor ? { cursor } : {}) })}`;
  const state = useApi(path);
  const filter = { label, min, prefix: byLabel ? '' : prefix, limit };
  // The fields hold what the user typed, not the URL's values: preact writes a controlled
  // field's value back on every render, so a page that arrived after the user chose a label
  // would otherwise undo the choice.
  const [fields, setFields] = useState({ label, min: min || '0.5', prefix });
  const edit = (name) => (e) => {
    const value = e.currentTarget.value;
    setFields((f) => ({ ...f, [name]: value }));
  };

  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const chosen = String(form.get('label'));
    location.hash = link('gallery', {
      label: chosen,
      min: chosen ? String(form.get('min')) : '',
      prefix: chosen ? '' : String(form.get('prefix')),
      limit,
    });
  };
  const items = state.data?.items ?? [];
  const title = byLabel
    ? `“${label}” scored ≥ ${percent(Number(min || 0))}`
    : `Images under “${prefix || '/'}”`;
  return html`
    <h2>Gallery</h2>
    <form class="filters" onSubmit=${submit} aria-label="Filter the gallery">
      <label>Label
        <select name="label" value=${fields.label} onChange=${edit('label')}>
          <option value="">any (list by key prefix)</option>
          ${config.labels.map((l) => html`<option value=${l}>${l}</option>`)}
        </select>
      </label>
      <label>Minimum score
        <input name="min" type="number" min="0" max="1" step="0.01" value=${fields.min} onInput=${edit('min')} />
      </label>
      <label>Key prefix
        <input name="prefix" type="text" value=${fields.prefix} onInput=${edit('prefix')} placeholder="images/" />
      </label>
      <button type="submit">Show</button>
      ${!byLabel && html`<a href=${link('histogram', { prefix })}>Top labels under this prefix</a>`}
      ${!byLabel && config.truth && html`<a href=${link('evaluate', { prefix })}>Evaluation under this prefix</a>`}
      ${!byLabel && config.compare && html`<a href=${link('compare', { prefix })}>Compare the two models under this prefix</a>`}
    </form>
    <p class="muted" aria-live="polite">${title}${state.data ? ` · ${items.length} on this page` : ''}</p>
    <${Status} state=${state} />
    ${state.data && items.length === 0 && html`<p>No images match.</p>`}
    <ul class="gallery" aria-label="Images">
      ${items.map((item) => html`<li><${Thumb} item=${item} byLabel=${byLabel} /></li>`)}
    </ul>
    <nav class="pager" aria-label="Pages">
      ${cursor && html`<a href=${link('gallery', filter)}>First page</a>`}
      ${state.data?.cursor && html`<a href=${link('gallery', { ...filter, cursor: state.data.cursor })} rel="next">Next page</a>`}
    </nav>
  `;
}

function Thumb({ item, byLabel }) {
  const top = item.result?.labels?.[0];
  const caption = byLabel
    ? `${item.label} ${percent(item.score)}`
    : item.result?.status === 'failed'
      ? item.result.error?.code
      : top
        ? `${top.label} ${percent(top.score)}`
        : 'not labeled yet';
  return html`
    <a href=${link('image', { key: item.key })} data-key=${item.key}>
      <img src=${item.url} alt=${item.key} loading="lazy" width="120" height="120" />
      <div class="top">${caption}</div>
      <div class="key">${item.key}</div>
    </a>
  `;
}

function ImageView({ params }) {
  const key = params.get('key') ?? '';
  const state = useApi(`image?${new URLSearchParams({ key })}`);
  const image = state.data;
  const result = image?.result;
  return html`
    <h2><code>${key}</code></h2>
    <${Status} state=${state} />
    ${
      image &&
      html`
      <div class="image-view">
        <a href=${image.url}><img src=${image.url} alt=${key} /></a>
        <section aria-label="Scores">
          ${!result && html`<p>No result for this image yet.</p>`}
          ${
            result?.status === 'failed' &&
            html`<p class="error">Failed: <code>${result.error.code}</code> ${result.error.message}</p>`
          }
          ${
            result?.status === 'ok' &&
            html`
            <h3>Top ${result.labels.length} labels</h3>
            <ul class="bars" aria-label="Scores">
              ${result.labels.map(
                (l) => html`
                  <li data-label=${l.label} data-score=${l.score}>
                    <span>${l.label}</span>
                    <span class="track" aria-hidden="true"><span class="fill" style=${`width:${l.score * 100}%`}></span></span>
                    <span class="value">${percent(l.score)}</span>
                  </li>
                `,
              )}
            </ul>`
          }
          ${result && html`<p class="muted">model ${result.model}@${result.modelVersion} · ${result.labeledAt}${result.jobId ? html` · job <a href=${link('jobs')}>${result.jobId}</a>` : ''}</p>`}
        </section>
      </div>
    `
    }
  `;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

function Jobs({ config }) {
  const state = useApi('jobs');
  const [starting, setStarting] = useState(undefined);
  const [estimate, setEstimate] = useState(undefined);
  const jobs = state.data?.items ?? [];
  const running = jobs.some((j) => !FINISHED.has(j.status));
  useEffect(() => {
    if (!running) return;
    // Progress comes from the jobs table; poll it while something runs.
    const timer = setTimeout(state.again, 1000);
    return () => clearTimeout(timer);
  }, [state.data]);

  const start = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setStarting('starting…');
    try {
      const job = await api('jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          prefix: form.get('prefix'),
          mode: form.get('mode'),
          target: form.get('target'),
          ...(form.get('sample') ? { sample: form.get('sample') } : {}),
        }),
      });
      setStarting(`started ${job.jobId}`);
      state.again();
    } catch (error) {
      setStarting(error.message);
    }
  };
  // The same count and figures as `labeler jobs start --dry-run`; starts nothing.
  const estimateJob = async (e) => {
    const form = new FormData(e.currentTarget.form);
    const query = new URLSearchParams({
      prefix: form.get('prefix'),
      mode: form.get('mode'),
      ...(form.get('sample') ? { sample: form.get('sample') } : {}),
    });
    setEstimate({ loading: true });
    try {
      setEstimate({ data: await api(`estimate?${query}`) });
    } catch (error) {
      setEstimate({ error: error.message });
    }
  };
  return html`
    <h2>Jobs</h2>
    <form class="filters" onSubmit=${start} aria-label="Start a job">
      <label>Key prefix in ${config.bucket}
        <input name="prefix" type="text" required placeholder="images/" />
      </label>
      <label>Mode
        <select name="mode"><option value="stale">stale: skip what this model labeled</option><option value="all">all: label again</option></select>
      </label>
      <label>Target
        <select name="target"><option value="lambda">lambda</option><option value="gpu">gpu</option></select>
      </label>
      <label>Sample (as jobs start --sample)
        <input name="sample" type="text" placeholder="all, or 50, or 5%" />
      </label>
      <button type="button" onClick=${estimateJob}>Estimate</button>
      <button type="submit">Start job</button>
      <span role="status">${starting}</span>
    </form>
    <${Estimate} state=${estimate} />
    <${Drift} />
    <${Status} state=${state} />
    ${state.data && jobs.length === 0 && html`<p>No jobs yet.</p>`}
    ${jobs.map((job) => html`<${JobCard} job=${job} truth=${config.truth} compare=${config.compare} />`)}
  `;
}

/** Each schedule's runs against its baseline (`labeler jobs schedule drift`): one small chart each. */
function Drift() {
  const state = useApi('drift');
  const items = state.data?.items ?? [];
  if (state.error) return html`<${Status} state=${state} />`;
  if (items.length === 0) return null;
  return html`
    <section class="card drift" aria-label="Label drift per schedule">
      <h3>Label drift per schedule</h3>
      <p class="muted">
        Jensen–Shannon divergence of each run's top-1 labels from the schedule's first finished run; the dashed
        line is the threshold (${state.data.threshold}) over which the stack sends an alarm.
      </p>
      ${items.map((report) => html`<${DriftChart} report=${report} />`)}
    </section>
  `;
}

const CHART = { width: 320, height: 90, pad: 8 };

/** A schedule's divergence per run (oldest left) against its threshold line, in plain SVG. */
function DriftChart({ report }) {
  const runs = report.runs.filter((r) => r.divergence !== undefined);
  const { width, height, pad } = CHART;
  // The axis reaches at least twice the threshold, so the line never sits at the top edge.
  const top = Math.max(report.threshold * 2, ...runs.map((r) => r.divergence));
  const x = (i) => (runs.length < 2 ? width / 2 : pad + (i * (width - 2 * pad)) / (runs.length - 1));
  const y = (v) => height - pad - (v / top) * (height - 2 * pad);
  const over = runs.filter((r) => r.overThreshold).length;
  return html`
    <figure class="drift-chart" data-schedule=${report.schedule} aria-label=${`Drift of schedule ${report.schedule}`}>
      <figcaption>
        <strong>${report.schedule}</strong> · ${runs.length} run${runs.length === 1 ? '' : 's'} against
        <code>${report.baselineJobId ?? '-'}</code>${over > 0 ? html` · <span class="over">${over} over the threshold</span>` : ''}
      </figcaption>
      <svg viewBox=${`0 0 ${width} ${height}`} width=${width} height=${height} role="img"
        aria-label=${`Divergence per run of ${report.schedule}, threshold ${report.threshold}`}>
        <line class="threshold" x1=${pad} x2=${width - pad} y1=${y(report.threshold)} y2=${y(report.threshold)}
          data-threshold=${report.threshold} />
        ${runs.length > 1 && html`<polyline class="divergence" points=${runs.map((r, i) => `${x(i)},${y(r.divergence)}`).join(' ')} />`}
        ${runs.map(
          (
            r,
            i,
          ) => html`<circle class=${r.overThreshold ? 'run over' : 'run'} cx=${x(i)} cy=${y(r.divergence)} r="4"
            data-job=${r.jobId} data-divergence=${r.divergence}>
            <title>${r.jobId} (${r.createdAt}): ${r.divergence.toFixed(4)}${r.overThreshold ? ' — over the threshold' : ''}</title>
          </circle>`,
        )}
      </svg>
    </figure>
  `;
}

const money = (d) => `$${d < 10 ? d.toFixed(3) : d.toFixed(2)}`;

/** A job's estimate before it starts: images, and per target all-in dollars and wall time. */
function Estimate({ state }) {
  if (!state) return null;
  if (state.loading) return html`<p role="status">counting…</p>`;
  if (state.error) return html`<p role="alert">${state.error}</p>`;
  const e = state.data;
  const atLeast = e.complete ? '' : 'at least ';
  const time = (target, t, where) =>
    t
      ? `${duration(t.seconds)} ${where} (${t.workers} ${target === 'lambda' ? 'executions' : 'instances'}, bound by ${t.boundBy})`
      : `${where}: none (no GPU quota)`;
  return html`
    <section class="card" aria-label="Job estimate">
      <p>
        <strong>${atLeast}${e.images}</strong> images to label
        ${e.mode === 'stale' ? html` of ${atLeast}${e.objects} objects (mode stale)` : ''} · nothing started
      </p>
      <table>
        <thead><tr><th>target</th><th>all in</th><th>per 1,000</th><th>compute</th><th>DynamoDB</th><th>time</th></tr></thead>
        <tbody>
          ${e.targets.map(
            (t) => html`<tr data-target=${t.target}>
              <td>${t.target}${t.instanceType ? ` (${t.instanceType})` : ''}</td>
              <td>${money(t.dollars.total)}</td>
              <td>${money(t.perThousand)}</td>
              <td>${money(t.dollars.compute)}</td>
              <td>${money(t.dollars.dynamodb)}</td>
              <td>${time(t.target, t.configured, 'as configured')}; ${time(t.target, t.defaultQuotas, 'at default quotas')}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      <p class="muted">auto: ${e.auto.target}: ${e.auto.reason}</p>
    </section>
  `;
}

/** A finished job's receipt (decision 0035): what it used and cost, next to Rekognition's price. */
function Receipt({ receipt: r }) {
  const usd = (x) => `$${x < 0.01 ? x.toFixed(6) : x.toFixed(4)}`;
  const n = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  return html`
    <p class="muted receipt" aria-label="Receipt">
      Receipt: <strong>${usd(r.dollars.total)}</strong> all-in, ${usd(r.dollarsPerThousand)} per 1,000 images
      (Rekognition $${r.rekognitionPerThousand.toFixed(2)}) · ${r.imagesPerSecond.toFixed(2)} img/s over
      ${r.wallSeconds.toFixed(1)} s · compute ${r.computeSeconds.toFixed(1)} s · DynamoDB
      ${n(r.dynamoWriteUnits)} write / ${n(r.dynamoReadUnits)} read units · S3 ${n(r.s3Requests.get)} GET,
      ${n(r.s3Requests.put)} PUT · SQS ${n(r.sqsRequests)}
    </p>
  `;
}

function JobCard({ job, truth, compare }) {
  const done = job.done;
  const total = job.planningDone ? job.total : undefined;
  const end = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  const seconds = Math.max(0.001, (end - Date.parse(job.createdAt)) / 1000);
  const rate = done / seconds;
  const eta =
    total !== undefined && rate > 0 && !FINISHED.has(job.status) ? (total - done) / rate : undefined;
  const pct = total ? Math.round((done / total) * 100) : total === 0 ? 100 : 0;
  return html`
    <article class="card" data-job=${job.jobId} aria-label=${`Job ${job.jobId}`}>
      <div class="job-head">
        <strong><code>${job.jobId}</code></strong>
        <span class=${`status ${job.status}`}>${job.status}</span>
        <span class="muted">s3://${job.bucket}/${job.prefix} · ${job.mode} · ${job.target}</span>
      </div>
      <progress max="100" value=${pct} aria-label=${`Progress of job ${job.jobId}`}>${pct} %</progress>
      <div class="stats">
        <span class="pct">${pct} %</span>
        <span>${done}/${total ?? '?'} done</span>
        <span>labeled ${job.labeled}</span>
        <span>failed ${job.failed}</span>
        <span>skipped ${job.skipped}</span>
        ${job.cancelled > 0 && html`<span>cancelled ${job.cancelled}</span>`}
        <span>${rate.toFixed(1)} img/s</span>
        <span>ETA ${eta === undefined ? (FINISHED.has(job.status) ? 'done' : '--') : duration(eta)}</span>
      </div>
      <div class="stats">
        <a href=${link('failures', { job: job.jobId })}>Failures (${job.failed})</a>
        <a href=${link('histogram', { job: job.jobId })}>Top labels</a>
        <a href=${link('gallery', { prefix: job.prefix })}>Images</a>
        ${truth && html`<a href=${link('evaluate', { job: job.jobId })}>Evaluation</a>`}
        ${compare && html`<a href=${link('compare', { job: job.jobId })}>Compare models</a>`}
      </div>
      ${job.receipt && html`<${Receipt} receipt=${job.receipt} />`}
    </article>
  `;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600
    ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
    : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function Failures({ params }) {
  const job = params.get('job') ?? '';
  const state = useApi(`jobs/${encodeURIComponent(job)}/failures`);
  const groups = new Map();
  for (const f of state.data?.items ?? []) {
    const list = groups.get(f.error.code) ?? [];
    list.push(f);
    groups.set(f.error.code, list);
  }
  const sorted = [...groups].sort((a, b) => b[1].length - a[1].length);
  return html`
    <h2>Failures of job <code>${job}</code></h2>
    <${Status} state=${state} />
    ${state.data && sorted.length === 0 && html`<p>No failed images.</p>`}
    ${sorted.map(
      ([code, list]) => html`
        <section class="card" data-code=${code} aria-label=${`${code}: ${list.length}`}>
          <h3><code>${code}</code> · ${list.length} ${list.length === 1 ? 'image' : 'images'}</h3>
          <ul>
            ${list.map(
              (f) =>
                html`<li><a href=${link('image', { key: f.key })} data-key=${f.key}>${f.key}</a> <span class="muted">${f.error.message}</span></li>`,
            )}
          </ul>
        </section>
      `,
    )}
  `;
}

/** Top-1 labels of a job's results, or of every image under a prefix (read page by page). */
function Histogram({ params }) {
  const job = params.get('job') ?? '';
  const prefix = params.get('prefix') ?? '';
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    let live = true;
    (async () => {
      let results = [];
      if (job) {
        results = (await api(`jobs/${encodeURIComponent(job)}/results`)).items;
      } else {
        let cursor;
        do {
          const page = await api(
            `images?${new URLSearchParams({ prefix, limit: '100', ...(cursor ? { cursor } : {}) })}`,
          );
          results.push(...page.items.flatMap((i) => (i.result ? [i.result] : [])));
          if (live) setState({ loading: true, data: { count: results.length } });
          cursor = page.cursor;
        } while (cursor && live);
      }
      const counts = new Map();
      let failed = 0;
      for (const r of results) {
        const top = r.labels?.[0]?.label;
        if (r.status !== 'ok' || !top) failed++;
        else counts.set(top, (counts.get(top) ?? 0) + 1);
      }
      if (live)
        setState({ data: { count: results.length, failed, bars: [...counts].sort((a, b) => b[1] - a[1]) } });
    })().catch((error) => live && setState({ error: error.message }));
    return () => {
      live = false;
    };
  }, [job, prefix]);
  const data = state.data;
  const most = Math.max(1, ...(data?.bars ?? []).map(([, n]) => n));
  return html`
    <h2>Top labels ${job ? html`of job <code>${job}</code>` : html`under <code>${prefix || '/'}</code>`}</h2>
    <${Status} state=${state} />
    ${data && html`<p class="muted" aria-live="polite">${data.count} results${data.bars ? ` · ${data.failed} failed or unlabeled` : ' read so far…'}</p>`}
    ${
      data?.bars &&
      html`
      <ul class="bars" aria-label="Images per top label">
        ${data.bars.map(
          ([label, n]) => html`
            <li data-label=${label} data-count=${n}>
              <a href=${link('gallery', { label, min: '0' })}>${label}</a>
              <span class="track" aria-hidden="true"><span class="fill" style=${`width:${(n / most) * 100}%`}></span></span>
              <span class="value">${n}</span>
            </li>
          `,
        )}
      </ul>
    `
    }
  `;
}

const fixed = (x, digits = 3) => (x === null || x === undefined ? '–' : x.toFixed(digits));
const pctOrDash = (x) => (x === null || x === undefined ? '–' : percent(x));

/**
 * "labeler evaluate" of a job or a prefix against the page's truth: the confusion matrix as
 * a heat map whose cells list their images, per-class bars, the reliability diagram and
 * the threshold curve.
 */
function Evaluate({ params, config }) {
  const job = params.get('job') ?? '';
  const prefix = params.get('prefix') ?? '';
  const state = useApi(`evaluate?${new URLSearchParams(job ? { job } : { prefix })}`);
  const [cell, setCell] = useState(undefined);
  const e = state.data;
  return html`
    <h2>Evaluation of ${job ? html`job <code>${job}</code>` : html`<code>${prefix || '/'}</code>`}</h2>
    <p class="muted">truth: ${config.truth ?? 'none attached (labeler ui --truth <csv|stack>)'}</p>
    <${Status} state=${state} />
    ${e && e.images === 0 && html`<p>No image of this selection has a truth label.</p>`}
    ${
      e &&
      e.images > 0 &&
      html`
      <ul class="summary" aria-label="Summary">
        <li data-metric="top1">top-1 accuracy <strong>${pctOrDash(e.top1.accuracy)}</strong> (${e.top1.correct}/${e.images})</li>
        <li data-metric="topk">top-${e.topK.k} accuracy <strong>${pctOrDash(e.topK.accuracy)}</strong></li>
        <li>macro F1 <strong>${fixed(e.macro.f1)}</strong></li>
        <li>expected calibration error <strong>${fixed(e.calibration.ece)}</strong></li>
        <li>${e.ok} ok · ${e.failed} failed · ${e.withoutResult} without a result</li>
        ${e.unknownLabels.length > 0 && html`<li class="error">labels the model lacks: ${e.unknownLabels.map((u) => `${u.label} (${u.images})`).join(', ')}</li>`}
      </ul>
      <section aria-label="Confusion matrix">
        <h3>Confusion matrix</h3>
        <p class="muted">rows: truth · columns: top-1 label · (none): no result or failed · choose a cell to see its images</p>
        <${Heatmap} e=${e} onCell=${setCell} chosen=${cell} />
        ${cell && html`<${CellImages} e=${e} cell=${cell} />`}
      </section>
      <section aria-label="Per class">
        <h3>Per class</h3>
        <${ClassBars} classes=${e.classes} />
      </section>
      <div class="charts">
        <section aria-label="Reliability diagram">
          <h3>Reliability diagram</h3>
          <${Reliability} bins=${e.calibration.bins} />
        </section>
        <section aria-label="Threshold curve">
          <h3>Threshold curve</h3>
          <${ThresholdCurve} rows=${e.thresholds} />
        </section>
      </div>
    `
    }
  `;
}

/**
 * "labeler compare" of the page's two models over a job or a prefix: agreement, the A→B
 * transition matrix and the images that changed most, each shown with both models' labels.
 */
function Compare({ params, config }) {
  const job = params.get('job') ?? '';
  const prefix = params.get('prefix') ?? '';
  const state = useApi(`compare?${new URLSearchParams(job ? { job } : { prefix })}`);
  const c = state.data;
  const t = c?.truth;
  return html`
    <h2>${config.compare ? `${config.compare.a} → ${config.compare.b}` : 'Comparison'} over ${job ? html`job <code>${job}</code>` : html`<code>${prefix || '/'}</code>`}</h2>
    <${Status} state=${state} />
    ${c && c.images.compared === 0 && html`<p>No image of this selection has an ok result from both models.</p>`}
    ${
      c &&
      c.images.compared > 0 &&
      html`
      <ul class="summary" aria-label="Summary">
        <li data-metric="agreement">top-1 agreement <strong>${percent(c.agreement.rate)}</strong> (${c.agreement.agree}/${c.images.compared})</li>
        <li>top-1 score B − A: mean <strong>${fixed(c.scoreChanges.top1.mean)}</strong></li>
        <li>newly under ${c.threshold.value}: <strong>${c.threshold.newlyUnder.length}</strong></li>
        ${t && html`<li data-metric="accuracy">accuracy A <strong>${pctOrDash(t.a.accuracy)}</strong> · B <strong>${pctOrDash(t.b.accuracy)}</strong></li>`}
        <li>only A ${c.images.onlyA} · only B ${c.images.onlyB} · failed A ${c.images.aFailed} · B ${c.images.bFailed} · both ${c.images.bothFailed}</li>
      </ul>
      <div class="compare">
        <section aria-label="Transition matrix">
          <h3>Transitions</h3>
          <p class="muted">rows: top-1 of A · columns: top-1 of B · the diagonal agrees</p>
          <${Transitions} labels=${c.transitions.labels} matrix=${c.transitions.matrix} />
        </section>
        <section aria-label="Changed most">
          <h3>Changed most</h3>
          <${ChangedImages} items=${c.changed} urls=${c.urls} />
        </section>
      </div>
      ${
        t &&
        html`<section aria-label="B right, A wrong"><h3>B right, A wrong (${t.fixed.length})</h3><${ChangedImages} items=${t.fixed} urls=${c.urls} /></section>
        <section aria-label="A right, B wrong"><h3>A right, B wrong (${t.broken.length})</h3><${ChangedImages} items=${t.broken} urls=${c.urls} /></section>`
      }
    `
    }
  `;
}

function Transitions({ labels, matrix }) {
  const most = Math.max(1, ...matrix.flat());
  return html`
    <table class="heatmap transitions">
      <thead><tr><th scope="col">A \\ B</th>${labels.map((l) => html`<th scope="col">${l}</th>`)}</tr></thead>
      <tbody>
        ${labels.map(
          (r, i) => html`<tr>
            <th scope="row">${r}</th>
            ${labels.map((c, j) => {
              const n = matrix[i][j];
              const alpha = n === 0 ? 0 : 0.15 + 0.85 * (n / most);
              const style = `background:${i === j ? `rgba(30,125,58,${alpha})` : `rgba(179,38,30,${alpha})`};color:${alpha > 0.55 ? '#fff' : 'inherit'}`;
              return html`<td style=${style} data-row=${r} data-column=${c} data-count=${n}>${n > 0 ? n : ''}</td>`;
            })}
          </tr>`,
        )}
      </tbody>
    </table>
  `;
}

/** Each image with A's top-1 and B's top-1 side by side. */
function ChangedImages({ items, urls }) {
  if (items.length === 0) return html`<p class="muted">none</p>`;
  return html`
    <ul class="changed" aria-label="Images">
      ${items.map(
        (item) => html`<li data-key=${item.image.key}>
          <a href=${link('image', { key: item.image.key })}>
            <img src=${urls[item.image.key]} alt=${item.image.key} loading="lazy" width="96" height="96" />
          </a>
          <div>
            <div class="key">${item.image.key}</div>
            ${item.truth && html`<div>truth <strong>${item.truth}</strong></div>`}
            <div class="side" data-model="a">A <strong>${item.a.label}</strong> ${percent(item.a.score)}</div>
            <div class="side" data-model="b">B <strong>${item.b.label}</strong> ${percent(item.b.score)}</div>
          </div>
        </li>`,
      )}
    </ul>
  `;
}

function Heatmap({ e, onCell, chosen }) {
  const { rows, columns, matrix } = e.confusion;
  const most = Math.max(1, ...matrix.flat());
  return html`
    <table class="heatmap">
      <thead><tr><th scope="col">truth \\ top-1</th>${columns.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
      <tbody>
        ${rows.map(
          (r, i) => html`<tr>
            <th scope="row">${r}</th>
            ${columns.map((c, j) => {
              const n = matrix[i][j];
              const right = r === c;
              const alpha = n === 0 ? 0 : 0.15 + 0.85 * (n / most);
              const style = `background:${right ? `rgba(30,125,58,${alpha})` : `rgba(179,38,30,${alpha})`};color:${alpha > 0.55 ? '#fff' : 'inherit'}`;
              const pressed = chosen && chosen[0] === i && chosen[1] === j;
              return html`<td style=${style} data-row=${r} data-column=${c} data-count=${n}>
                ${n > 0 ? html`<button type="button" aria-pressed=${pressed ? 'true' : 'false'} aria-label=${`${n} ${r} as ${c}`} onClick=${() => onCell([i, j])}>${n}</button>` : ''}
              </td>`;
            })}
          </tr>`,
        )}
      </tbody>
    </table>
  `;
}

function CellImages({ e, cell }) {
  const [i, j] = cell;
  const images = e.confusion.images?.[i]?.[j] ?? [];
  return html`
    <div class="card cell-images" aria-label="Images of the chosen cell">
      <h4>truth ${e.confusion.rows[i]}, top-1 ${e.confusion.columns[j]}: ${images.length} ${images.length === 1 ? 'image' : 'images'}</h4>
      <ul>
        ${images.map((img) => html`<li><a href=${link('image', { key: img.key })} data-key=${img.key}>${img.key}</a></li>`)}
      </ul>
    </div>
  `;
}

function ClassBars({ classes }) {
  const bar = (name, v) => html`
    <span class="metric">${name}</span>
    <span class="track" aria-hidden="true"><span class="fill" style=${`width:${(v ?? 0) * 100}%`}></span></span>
    <span class="value">${fixed(v)}</span>`;
  return html`
    <ul class="class-bars" aria-label="Precision, recall and F1 per class">
      ${classes.map(
        (c) => html`<li data-label=${c.label} data-support=${c.support}>
          <strong>${c.label}</strong> <span class="muted">${c.support} images${c.inModel ? '' : ' · not in the model'}</span>
          <div class="triple">${bar('precision', c.precision)}${bar('recall', c.recall)}${bar('F1', c.f1)}</div>
        </li>`,
      )}
    </ul>
  `;
}

const W = 320;
const H = 240;
const PAD = 32;
const sx = (x) => PAD + x * (W - 2 * PAD);
const sy = (y) => H - PAD - y * (H - 2 * PAD);

function Axes({ x, y }) {
  return html`
    <line x1=${sx(0)} y1=${sy(0)} x2=${sx(1)} y2=${sy(0)} stroke="currentColor" />
    <line x1=${sx(0)} y1=${sy(0)} x2=${sx(0)} y2=${sy(1)} stroke="currentColor" />
    ${[0, 0.5, 1].map(
      (t) => html`
        <text x=${sx(t)} y=${sy(0) + 14} text-anchor="middle" font-size="10">${t}</text>
        <text x=${sx(0) - 6} y=${sy(t) + 3} text-anchor="end" font-size="10">${t}</text>`,
    )}
    <text x=${sx(0.5)} y=${H - 4} text-anchor="middle" font-size="11">${x}</text>
    <text x="10" y=${sy(0.5)} font-size="11" transform=${`rotate(-90 10 ${sy(0.5)})`} text-anchor="middle">${y}</text>
  `;
}

function Reliability({ bins }) {
  return html`
    <svg class="chart reliability" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label="Accuracy against mean score per score bin">
      <${Axes} x="top-1 score" y="accuracy" />
      <line x1=${sx(0)} y1=${sy(0)} x2=${sx(1)} y2=${sy(1)} stroke="#999" stroke-dasharray="4 3" />
      ${bins
        .filter((b) => b.images > 0)
        .map(
          (
            b,
          ) => html`<rect class="bin" data-from=${b.from} data-images=${b.images} data-accuracy=${b.accuracy}
            x=${sx(b.from) + 1} width=${sx(b.to) - sx(b.from) - 2} y=${sy(b.accuracy)} height=${sy(0) - sy(b.accuracy)}
            fill="var(--bar)" opacity="0.8"><title>${`${b.from.toFixed(1)}–${b.to.toFixed(1)}: ${b.images} images, mean score ${fixed(b.meanScore)}, accuracy ${pctOrDash(b.accuracy)}`}</title></rect>`,
        )}
    </svg>
  `;
}

function ThresholdCurve({ rows }) {
  const points = (pick) =>
    rows
      .filter((r) => pick(r) !== null)
      .map((r) => `${sx(r.minScore)},${sy(pick(r))}`)
      .join(' ');
  return html`
    <svg class="chart thresholds" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label="Accuracy and share of images kept against the minimum score">
      <${Axes} x="minimum score" y="" />
      <polyline class="accuracy" points=${points((r) => r.accuracy)} fill="none" stroke="var(--ok)" stroke-width="2" />
      <polyline class="share" points=${points((r) => r.share)} fill="none" stroke="var(--bar)" stroke-width="2" stroke-dasharray="5 3" />
      ${rows
        .filter((r) => r.accuracy !== null)
        .map(
          (r) =>
            html`<circle class="point" data-min-score=${r.minScore} data-share=${r.share} data-accuracy=${r.accuracy ?? ''} cx=${sx(r.minScore)} cy=${sy(r.accuracy ?? 0)} r="2.5" fill="var(--ok)"><title>${`≥ ${r.minScore}: ${pctOrDash(r.share)} of the images, accuracy ${pctOrDash(r.accuracy)}`}</title></circle>`,
        )}
    </svg>
    <p class="muted"><span class="legend ok">━ accuracy</span> <span class="legend share">╍ share of images kept</span></p>
  `;
}

api('config').then(
  (config) => {
    const root = document.getElementById('app');
    root.textContent = '';
    render(html`<${App} config=${config} />`, root);
  },
  (error) => {
    document.getElementById('app').textContent = `The results page could not start: ${error.message}`;
  },
);
