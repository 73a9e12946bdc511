/* Forfait portal: the few things a page does in the browser. Everything works without it. */
(() => {
  // a form marked data-confirm asks before it is sent (restore an import, revoke a key)
  document.querySelectorAll('form[data-confirm]').forEach((form) => {
    form.addEventListener('submit', (e) => {
      if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
    });
  });
  // a submitted form's buttons are disabled, so a double click sends it once
  document.querySelectorAll('form[method=post]').forEach((form) => {
    form.addEventListener('submit', (e) => {
      if (e.defaultPrevented) return;
      setTimeout(() => form.querySelectorAll('button[type=submit]').forEach((b) => { b.disabled = true; }), 0);
    });
  });
})();
