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

// --- the inference widget ---------------------------------------------------------------
// POST /models/{ns}/{name} as the Inference API expects; the session cookie authenticates,
// and X-CSRF-Token proves the request comes from this page (app/web/session.py). Each task
// has its own inputs (card.html) and its answer is drawn for people: label bars, highlighted
// spans, similarity scores, streamed text. Answers are put in with textContent only.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function splitList(text, separator) {
  return text.split(separator).map((s) => s.trim()).filter(Boolean);
}

function readAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// The request of a task: [body, content type].
async function widgetRequest(task, form) {
  const field = (name) => (form.elements[name] ? form.elements[name].value : "");
  const json = (value) => [JSON.stringify(value), "application/json"];
  switch (task) {
    case "question-answering":
      return json({ inputs: { question: field("question"), context: field("inputs") } });
    case "sentence-similarity":
      return json({
        inputs: { source_sentence: field("inputs"), sentences: splitList(field("sentences"), "\n") },
      });
    case "zero-shot-classification":
      return json({ inputs: field("inputs"), parameters: { candidate_labels: splitList(field("labels"), ",") } });
    case "image-classification": {
      const file = form.elements.image.files[0];
      return [file, file.type || "application/octet-stream"];
    }
    case "zero-shot-image-classification": {
      const image = await readAsBase64(form.elements.image.files[0]);
      return json({ inputs: image, parameters: { candidate_labels: splitList(field("labels"), ",") } });
    }
    case "text-generation":
      if (form.dataset.chat) {
        return json({
          model: form.dataset.model,
          messages: [{ role: "user", content: field("inputs") }],
          stream: true,
        });
      }
      return json({ inputs: field("inputs"), stream: true });
    default:
      return json({ inputs: field("inputs") });
  }
}

// [{label, score}] from the shapes the tasks answer.
function scoredLabels(task, body) {
  if (task === "zero-shot-classification" && body.labels) {
    return body.labels.map((label, i) => ({ label, score: body.scores[i] }));
  }
  const rows = Array.isArray(body[0]) ? body[0] : body;
  return rows.map((row) => ({ label: row.label ?? row.token_str ?? row.sequence, score: row.score }));
}

function drawBars(out, rows) {
  const list = el("ul", "scores");
  for (const row of rows) {
    const item = el("li");
    const percent = Math.max(0, Math.min(100, row.score * 100));
    item.append(el("span", "score-label", row.label));
    const bar = el("span", "score-bar");
    bar.style.width = percent.toFixed(1) + "%";
    item.append(bar, el("span", "score-value", row.score.toFixed(3)));
    list.append(item);
  }
  out.append(list);
}

function drawEntities(out, text, spans) {
  const para = el("p", "entities");
  let at = 0;
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    if (span.start < at) continue;
    para.append(document.createTextNode(text.slice(at, span.start)));
    const mark = el("mark", "entity", text.slice(span.start, span.end));
    const label = span.entity_group || span.entity || "";
    mark.dataset.entity = label;
    mark.title = label + " " + Number(span.score).toFixed(3);
    mark.append(el("span", "entity-label", label));
    para.append(mark);
    at = span.end;
  }
  para.append(document.createTextNode(text.slice(at)));
  out.append(para);
  if (!spans.length) out.append(el("p", "muted", "No entities found."));
}

function drawAnswer(task, out, body, form) {
  out.replaceChildren();
  if (["text-classification", "fill-mask", "zero-shot-classification", "image-classification",
       "zero-shot-image-classification"].includes(task)) {
    drawBars(out, scoredLabels(task, body));
  } else if (task === "token-classification") {
    drawEntities(out, form.elements.inputs.value, body);
  } else if (task === "question-answering") {
    const answer = Array.isArray(body) ? body[0] : body;
    out.append(el("p", "answer", answer.answer), el("p", "muted", "score " + answer.score.toFixed(3)));
  } else if (task === "sentence-similarity") {
    const sentences = splitList(form.elements.sentences.value, "\n");
    drawBars(out, body.map((score, i) => ({ label: sentences[i], score })));
  } else if (task === "feature-extraction") {
    let vector = body;
    while (Array.isArray(vector[0])) vector = vector[0];
    const preview = vector.slice(0, 6).map((x) => x.toFixed(4)).join(", ");
    out.append(el("p", "dims", vector.length + " dimensions"), el("code", "vector", "[" + preview + ", …]"));
  } else {
    const first = Array.isArray(body) ? body[0] : body;
    const text = first.generated_text ?? first.summary_text ?? first.translation_text ?? JSON.stringify(body);
    out.append(el("p", "generated", text));
  }
}

// text-generation with stream: true answers server-sent events, one token each.
async function drawStream(response, out) {
  out.replaceChildren();
  const text = el("p", "generated");
  out.append(text);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const events = pending.split("\n\n");
    pending = events.pop();
    for (const event of events) {
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("");
      if (!data.trim()) continue;
      if (data.trim() === "[DONE]") continue;
      const message = JSON.parse(data);
      if (message.token && !message.token.special) text.textContent += message.token.text;
      const delta = message.choices && message.choices[0] && message.choices[0].delta;
      if (delta && delta.content) text.textContent += delta.content;
    }
  }
  out.dataset.done = "true";
}

function setupInference() {
  for (const form of document.querySelectorAll("form[data-inference]")) {
    const out = form.querySelector("output");
    const button = form.querySelector("button");
    const task = form.dataset.task;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      delete out.dataset.done;
      out.classList.remove("is-error");
      out.textContent = "Running…";
      try {
        const [body, type] = await widgetRequest(task, form);
        const response = await fetch(form.dataset.chat || form.dataset.inference, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": type, "X-CSRF-Token": csrfToken() },
          body,
        });
        const streamed = (response.headers.get("content-type") || "").startsWith("text/event-stream");
        if (response.ok && streamed) {
          await drawStream(response, out);
        } else {
          const answer = await response.json().catch(() => ({ error: response.statusText }));
          if (!response.ok) {
            out.classList.add("is-error");
            out.textContent = "Error " + response.status + ": " + (answer.error || "unavailable");
          } else {
            drawAnswer(task, out, answer, form);
          }
          out.dataset.done = "true";
        }
      } catch (err) {
        out.classList.add("is-error");
        out.textContent = "The inference service did not answer.";
        out.dataset.done = "true";
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
