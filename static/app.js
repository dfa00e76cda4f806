// onbehalf — progressive enhancement only; every page works without this file.
"use strict";

// Forms marked data-confirm ask before an irreversible step. The server still
// asks for its own confirmation page where it matters; this just saves a click
// for people who change their mind.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
