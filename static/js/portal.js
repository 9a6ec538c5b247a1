// Behaviour every page shares, kept out of the HTML: the Content-Security-Policy allows no inline
// script or handler (docs/operations.md, "Production deployment").
(function () {
  "use strict";
  // A <select data-autosubmit> sends its form as soon as it changes (the language chooser; its
  // <noscript> button does the same without JavaScript).
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
      select.form.requestSubmit();
    }
  });
})();
