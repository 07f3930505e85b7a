// Atrium pages: copy buttons and the inference widget. Everything else works without JS.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function setupCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "Copied";
      } catch (err) {
        button.textContent = "Select and copy";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
}

// POST /models/{ns}/{name} as the Inference API expects; the session cookie authenticates,
// and X-CSRF-Token proves the request comes from this page (app/web/session.py).
function setupInference() {
  for (const form of document.querySelectorAll("form[data-inference]")) {
    const out = form.querySelector("output");
    const button = form.querySelector("button");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      out.textContent = "Running…";
      try {
        const response = await fetch(form.dataset.inference, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
          body: JSON.stringify({ inputs: form.elements.inputs.value }),
        });
        const body = await response.json().catch(() => ({ error: response.statusText }));
        out.classList.toggle("is-error", !response.ok);
        out.textContent = response.ok
          ? JSON.stringify(body, null, 2)
          : "Error " + response.status + ": " + (body.error || "unavailable");
      } catch (err) {
        out.classList.add("is-error");
        out.textContent = "The inference service did not answer.";
      } finally {
        button.disabled = false;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupCopyButtons();
  setupInference();
});
