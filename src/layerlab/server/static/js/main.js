// Start-up and routing: #/builder (a draft), #/run/ID (a run in the dashboard), #/runs.

import { initActivations } from './activations.js';
import { initInside } from './inside.js';
import { api } from './api.js';
import * as builder from './builder.js';
import * as dash from './dashboard.js';
import { bindDom, dom, toast } from './dom.js';
import { initRuns, showRunsPage } from './runs.js';
import { initShare, isSpecLink, openSpecLink } from './share.js';
import { setMeta, state } from './state.js';

let loadedRunSpec = null;  // the run whose spec the builder shows (to not reload it)

async function boot() {
  bindDom();
  let meta;
  try {
    meta = await api('/api/meta');
  } catch (err) {
    dom.validity.className = 'validity bad';
    dom.validity.textContent = `Cannot reach the layerlab server: ${err.message}`;
    return;
  }
  setMeta(meta);
  dom.serverStatus.textContent = `layerlab ${meta.version} · ${meta.workers} worker${meta.workers === 1 ? '' : 's'}`;
  dash.setImageSets(meta.datasets.filter((d) => d.images).map((d) => d.name));
  dash.initDashboard(meta);
  builder.initBuilder();
  initRuns(meta);
  initActivations();
  initInside();
  initShare();
  builder.on('check', () => {});
  builder.on('predictions', (out, why) => dash.draftPredictions(out, why));
  builder.on('userChange', onUserChange);
  dash.onRunChange(() => updateTrainButton());
  dom.train.addEventListener('click', train);
  dom.stop.addEventListener('click', () => dash.stopRun());
  dom.resume.addEventListener('click', () => dash.resumeRun());
  dom.saveJson.addEventListener('click', () => builder.download('json'));
  dom.saveYaml.addEventListener('click', () => builder.download('yaml'));
  dom.load.addEventListener('click', () => dom.loadFile.click());
  dom.loadFile.addEventListener('change', async () => {
    const file = dom.loadFile.files[0];
    dom.loadFile.value = '';
    if (file && await builder.upload(file)) leaveRun();
  });
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter' && !dom.train.disabled && !dom.pageBuilder.hidden) {
      e.preventDefault();
      train();
    }
  });
  dom.skipLink.addEventListener('click', (e) => {  // the page routes by #hash: focus the content, keep the route
    e.preventDefault();
    dom.main.focus();
  });
  builder.newDraft();
  dash.resetCharts();
  window.addEventListener('hashchange', route);
  route();
}

function updateTrainButton() {
  const run = dash.currentRun();
  dom.train.title = run && dash.ACTIVE.includes(run.status)
    ? 'Start another run with the current settings (Ctrl+Enter)' : 'Train this model (Ctrl+Enter)';
}

// A user edit detaches the dashboard from a finished run: it shows the new draft instead.
function onUserChange() {
  const run = dash.currentRun();
  if (!run) return;
  if (dash.ACTIVE.includes(run.status)) {
    dom.runNote.textContent = `run #${run.id} is still training; Train starts a new run with your changes`;
    builder.setDraftScope(run.id);  // the banner now speaks of the draft, not of the run whose charts are shown
    return;
  }
  leaveRun();
}

function leaveRun() {
  loadedRunSpec = null;
  builder.setDraftScope(null);
  if (location.hash.startsWith('#/run/')) history.replaceState(null, '', '#/builder');
  dash.showDraft();
  builder.scheduleCheck();
  setTabs('builder');
}

async function train() {
  if (dom.train.disabled) return;
  dom.train.disabled = true;
  try {
    const run = await api('/api/runs', { method: 'POST', body: { spec: builder.currentSpec() } });
    loadedRunSpec = run.id;  // the builder already shows its spec
    location.hash = `#/run/${run.id}`;
  } catch (err) {
    toast(err.message, { bad: true, ms: 6000 });
  } finally {
    dom.train.disabled = !builder.lastCheck?.valid;
  }
}

function setTabs(page) {
  for (const a of dom.tabs) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const run = dash.currentRun();
  dom.tabs.find((a) => a.dataset.page === 'builder').href = run ? `#/run/${run.id}` : '#/builder';
}

async function route() {
  const hash = location.hash || '#/builder';
  const runMatch = hash.match(/^#\/run\/(\d+)$/);
  const runsPage = hash === '#/runs';
  dom.pageBuilder.hidden = runsPage;
  dom.pageRuns.hidden = !runsPage;
  showRunsPage(runsPage);
  if (runsPage) { setTabs('runs'); return; }
  if (runMatch) {
    const id = Number(runMatch[1]);
    if (dash.currentRun()?.id !== id) {
      builder.setDraftScope(null);
      if (loadedRunSpec !== id) {
        try {
          const before = builder.snapshot(), edited = builder.isEdited();
          const run = await api(`/api/runs/${id}`);
          builder.loadSpec(run.spec);
          if (edited) {  // the user's edits are not lost without a word: Undo puts the draft back
            builder.offerUndo(before, `Run #${id}'s spec replaced your draft in the builder.`,
              () => { location.hash = '#/builder'; });
          }
        } catch (err) {
          toast(err.message, { bad: true });
          location.hash = '#/runs';
          return;
        }
      }
      loadedRunSpec = id;
      dash.openRun(id);
    }
  } else if (isSpecLink(hash)) {  // a shared link: its experiment in the builder (share.js)
    if (dash.currentRun()) leaveRun(); else dash.showDraft();
    await openSpecLink(hash);
  } else if (dash.currentRun()) {
    leaveRun();
  } else {
    dash.showDraft();
    builder.scheduleCheck();
  }
  setTabs('builder');
  window.dispatchEvent(new Event('resize'));  // plotly sizes charts that were hidden
}

boot();
