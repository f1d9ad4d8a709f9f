// The page of `retrieval serve`: search, listen, "more like this", query by a dropped file, the catalogue map.
// Plain DOM code against the JSON API of retrieval/web/app.py; nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#1098ad", "#f08c00", "#5c940d",
                 "#f783ac", "#495057", "#66d9e8", "#a61e4d", "#ffd43b", "#8ce99a", "#862e9c", "#d9480f"];
const OTHER = "#adb5bd";
const state = { map: null, category: null, categories: [] };

function element(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function describe(hit) {
  const album = [hit.album, hit.year ? `(${hit.year})` : null].filter(Boolean).join(" ");
  return [hit.artist, album, hit.genre].filter(Boolean).join(" · ");
}

function renderHits(hits) {
  const list = $("results");
  list.replaceChildren();
  hits.forEach((hit, i) => {
    const item = element("li", { class: "hit", "data-track-id": hit.track_id });
    item.append(element("span", { class: "rank" }, `${i + 1}.`));
    const head = element("div");
    head.append(element("div", { class: "title" }, hit.title || hit.track_id));
    head.append(element("div", { class: "meta" }, describe(hit)));
    item.append(head, element("span", { class: "score", title: "cosine similarity" }, hit.score.toFixed(3)));
    const tags = element("div", { class: "tags" });
    const matched = new Set(hit.matched || []);
    for (const tag of hit.tags) tags.append(element("span", { class: matched.has(tag) ? "tag matched" : "tag" }, tag));
    item.append(tags);
    const controls = element("div", { class: "controls" });
    if (hit.audio_url) {
      const audio = element("audio", { controls: "", preload: "none", src: hit.audio_url });
      audio.addEventListener("play", () => pauseOthers(audio));
      controls.append(audio);
    }
    const more = element("button", { class: "more", type: "button" }, "more like this");
    more.addEventListener("click", () => moreLike(hit.track_id, hit.title || hit.track_id));
    const zeroShot = element("button", { class: "zero-shot", type: "button" }, "tags");
    zeroShot.addEventListener("click", () => showTags(hit.track_id, tags, zeroShot));
    controls.append(more, zeroShot);
    item.append(controls);
    list.append(item);
  });
}

function pauseOthers(playing) {
  for (const audio of document.querySelectorAll("audio")) if (audio !== playing) audio.pause();
}

function showMatched(tags) {
  const box = $("matched");
  box.replaceChildren();
  if (!tags || !tags.length) return;
  box.append(element("span", { class: "meta" }, "nearest tags: "));
  for (const { tag, score } of tags.slice(0, 6)) box.append(element("span", { class: "tag matched" }, `${tag} ${score.toFixed(2)}`), " ");
}

async function search(query) {
  if (!query.trim()) return;
  showView("results");
  setStatus(`searching “${query}”…`);
  try {
    const result = await api(`/api/search?q=${encodeURIComponent(query)}&k=20`);
    renderHits(result.hits);
    showMatched(result.matched_tags);
    setStatus(`${result.hits.length} results for “${result.query}” (terms: ${result.terms.join(", ") || "-"}; ${result.elapsed_ms.toFixed(1)} ms)`);
  } catch (error) { setStatus(error.message, true); }
}

async function moreLike(trackId, name) {
  showView("results");
  setStatus(`tracks like “${name}”…`);
  try {
    const result = await api(`/api/tracks/${encodeURIComponent(trackId)}/similar?k=20`);
    renderHits(result.hits);
    showMatched([]);
    setStatus(`${result.hits.length} tracks like “${name}” (${result.elapsed_ms.toFixed(1)} ms)`);
  } catch (error) { setStatus(error.message, true); }
}

async function showTags(trackId, box, button) {
  try {
    const result = await api(`/api/tracks/${encodeURIComponent(trackId)}/tags?k=8`);
    const line = element("div", { class: "zero-shot-tags meta" }, "zero-shot: " +
      result.tags.map(({ tag, score }) => `${tag} ${score.toFixed(2)}`).join(", "));
    box.after(line);
    button.disabled = true;
  } catch (error) { setStatus(error.message, true); }
}

async function searchByFile(file) {
  showView("results");
  setStatus(`listening to “${file.name}”…`);
  try {
    const result = await api(`/api/search/audio?k=20&name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
    renderHits(result.hits);
    showMatched([]);
    setStatus(`${result.hits.length} tracks that sound like “${file.name}” (${result.elapsed_ms.toFixed(0)} ms)`);
  } catch (error) { setStatus(error.message, true); }
}

function showView(name) {
  $("results-view").hidden = name !== "results";
  $("map-view").hidden = name !== "map";
  $("tab-results").classList.toggle("active", name === "results");
  $("tab-map").classList.toggle("active", name === "map");
  if (name === "map") loadMap();
}

async function loadMap() {
  const category = $("category").value || state.categories[0];
  const method = $("method").value;
  const key = `${method}/${category}`;
  if (state.map === key) return;
  $("map-status").textContent = "projecting…";
  try {
    const result = await api(`/api/map?category=${encodeURIComponent(category)}&method=${method}`);
    drawMap(result);
    state.map = key;
    $("map-status").textContent = `${result.points.length} tracks, ${method.toUpperCase()} of the index vectors`;
  } catch (error) { $("map-status").textContent = error.message; }
}

function drawMap(result) {
  const counts = new Map();
  for (const point of result.points) counts.set(point.label, (counts.get(point.label) || 0) + 1);
  const labels = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a));
  // the commonest labels get a colour each; the long tail shares one grey
  const colour = new Map(labels.map((label, i) => [label, i < PALETTE.length ? PALETTE[i] : OTHER]));
  const svg = $("map");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  for (const point of result.points) {
    const circle = document.createElementNS(ns, "circle");
    circle.setAttribute("cx", point.x);
    circle.setAttribute("cy", -point.y);
    circle.setAttribute("r", 0.012);
    circle.setAttribute("fill", colour.get(point.label));
    circle.setAttribute("class", "point");
    circle.setAttribute("data-track-id", point.track_id);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${point.title || point.track_id}${point.artist ? " — " + point.artist : ""} [${point.label}${point.predicted ? ", predicted" : ""}]`;
    circle.append(title);
    circle.addEventListener("click", () => playPoint(point, circle));
    svg.append(circle);
  }
  const legend = $("legend");
  legend.replaceChildren();
  for (const label of labels) {
    const item = element("li");
    const swatch = element("span", { class: "swatch" });
    swatch.style.background = colour.get(label);
    item.append(swatch, element("span", {}, `${label} (${counts.get(label)})`));
    legend.append(item);
  }
}

function playPoint(point, circle) {
  for (const other of document.querySelectorAll("#map circle.playing")) other.classList.remove("playing");
  circle.classList.add("playing");
  $("map-track").textContent = `${point.title || point.track_id}${point.artist ? " — " + point.artist : ""} · ${point.label}`;
  const player = $("map-player");
  if (!point.audio_url) return;
  pauseOthers(player);
  player.src = point.audio_url;
  player.play().catch(() => {});
}

function setUpDrop() {
  const zone = $("drop");
  for (const name of ["dragenter", "dragover"]) zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) searchByFile(file);
  });
  $("file").addEventListener("change", (event) => { if (event.target.files[0]) searchByFile(event.target.files[0]); });
}

async function start() {
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); search($("q").value); });
  $("tab-results").addEventListener("click", () => showView("results"));
  $("tab-map").addEventListener("click", () => showView("map"));
  $("category").addEventListener("change", loadMap);
  $("method").addEventListener("change", loadMap);
  setUpDrop();
  try {
    const info = await api("/api/info");
    state.categories = info.categories;
    for (const category of info.categories) $("category").append(element("option", { value: category }, category));
    if (info.categories.includes("genre")) $("category").value = "genre";
    $("info").textContent = `${info.tracks.toLocaleString()} tracks · model ${info.model}`;
  } catch (error) { setStatus(error.message, true); }
  const query = new URLSearchParams(location.search).get("q");
  if (query) { $("q").value = query; search(query); }
}

start();
