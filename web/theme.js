// theme.js - sets the theme on <html> before the page is first drawn (a
// blocking classic script in <head>): the saved choice, else the system's.
// ui/notify.js keeps it up to date afterwards (toggle, system changes).
(() => {
  let t = null;
  try {
    t = localStorage.getItem('echolink.theme');
  } catch {
    // storage unavailable: follow the system
  }
  if (t !== 'light' && t !== 'dark') t = window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  document.documentElement.dataset.theme = t;
})();
