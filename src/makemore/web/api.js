// The API reference, drawn from the server's own OpenAPI description (/openapi.json).
"use strict";

function el(tag, parent, text = null, cls = null) {
  const node = document.createElement(tag);
  if (text !== null) node.textContent = text;
  if (cls) node.className = cls;
  if (parent) parent.appendChild(node);
  return node;
}

function typeOf(schema) {
  if (!schema) return "";
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
  if (schema.type === "array") return `list of ${typeOf(schema.items)}`;
  return schema.type || (schema.$ref ? schema.$ref.split("/").pop() : "");
}

function limits(schema) {
  const parts = [];
  for (const s of schema.anyOf || [schema]) {
    if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
    if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
    if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
    if (s.exclusiveMaximum !== undefined && s.exclusiveMaximum < 1e15) parts.push(`< ${s.exclusiveMaximum}`);
    if (s.maxLength !== undefined) parts.push(`at most ${s.maxLength} characters`);
    if (s.minItems !== undefined) parts.push(`at least ${s.minItems} item(s)`);
    if (s.maxItems !== undefined) parts.push(`at most ${s.maxItems} items`);
  }
  return parts.join(", ");
}

function fieldsTable(schema, required, parent) {
  const table = el("table", el("div", parent, null, "scroll"));
  const head = el("tr", el("thead", table));
  for (const h of ["field", "type", "default", "limits", "meaning"]) el("th", head, h);
  const body = el("tbody", table);
  for (const [name, field] of Object.entries(schema.properties || {})) {
    const row = el("tr", body);
    el("code", el("td", row), name + (required.includes(name) ? " *" : ""));
    el("td", row, typeOf(field));
    el("td", row, field.default === undefined ? "" : JSON.stringify(field.default));
    el("td", row, limits(field));
    el("td", row, field.description || "");
  }
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("status").textContent = `${spec.info.title} ${spec.info.version}: ${spec.info.summary || ""}`;
  const box = document.getElementById("endpoints");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const div = el("div", box, null, "endpoint");
      const title = el("h2", div);
      el("span", title, method.toUpperCase(), `method ${method}`);
      el("code", title, ` ${path}`);
      el("p", div, op.description || op.summary || "");
      const inPath = (op.parameters || []).filter((p) => p.in === "path");
      if (inPath.length) {
        const list = el("p", div, "in the path: ", "path-params");
        inPath.forEach((p, i) => { el("code", list, p.name); list.append(i < inPath.length - 1 ? ", " : " (a run id from GET /api/runs)"); });
      }
      const ref = op.requestBody && op.requestBody.content["application/json"].schema.$ref;
      if (ref) {
        const schema = spec.components.schemas[ref.split("/").pop()];
        fieldsTable(schema, schema.required || [], div);
        el("p", div, "* required", "hint");
      }
      const example = ((op.responses["200"] || {}).content || {})["application/json"];
      if (example && example.example !== undefined) {
        const box = el("div", div, null, "answer");
        el("p", box, "answers, for example:", "hint");
        el("pre", box, JSON.stringify(example.example));
      }
    }
  }
}

main().catch((error) => { document.getElementById("status").textContent = `cannot read the API: ${error.message}`; });
