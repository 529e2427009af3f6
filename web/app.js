// Placeholder client: shows whether echolinkd answers /healthz.
const el = document.getElementById('health');
fetch('/healthz')
  .then((r) => { el.textContent = r.ok ? 'ok' : `unavailable (${r.status})`; el.className = r.ok ? 'ok' : 'bad'; })
  .catch(() => { el.textContent = 'unreachable'; el.className = 'bad'; });
