// Forms built from the catalogue: one control per input field, named as the GraphQL field.

import type { CatalogField, CatalogInput, Values } from "./api";
import { append, h, replace } from "./dom";
import { number } from "./format";

/** A problem to show at a field (or, when name is null, above the form). */
export interface Problem {
  name: string | null;
  message: string;
}

type Element_ = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

interface Control {
  field: CatalogField;
  element: Element_;
  helpId: string;
  error: HTMLElement;
}

/** Groups of fields, in the order shown; fields of no group come last under "Other fields". */
export type Groups = [legend: string, names: string[]][];

const NUMBER = /^-?\d+(\.\d+)?$/;
const WHOLE = /^-?\d+$/;
const LONG_TEXT = 1000;

export class CatalogForm {
  readonly element: HTMLFormElement;
  private readonly body: HTMLFieldSetElement;
  private readonly controls = new Map<string, Control>();
  private readonly alert: HTMLElement;
  private readonly status: HTMLElement;
  /** True when the person changed something since the form was last filled or saved. */
  dirty = false;

  constructor(
    private readonly prefix: string,
    name: string,
    input: CatalogInput,
    groups: Groups,
    submitLabel: string,
    onSubmit: () => void,
    onChange: () => void = () => {},
  ) {
    this.alert = h("div", { class: "form-alert", role: "alert", hidden: true });
    this.status = h("p", { class: "form-status", role: "status" });
    this.body = h("fieldset", { class: "form-body" });
    const byName = new Map(input.fields.map((f) => [f.name, f]));
    const placed = new Set<string>();
    for (const [legend, names] of [...groups, ["Other fields", input.fields.map((f) => f.name)] as Groups[number]]) {
      const fields = names.filter((n) => byName.has(n) && !placed.has(n)).map((n) => byName.get(n)!);
      if (!fields.length) continue;
      fields.forEach((f) => placed.add(f.name));
      const set = h("fieldset", { class: "group" }, h("legend", {}, legend));
      const grid = h("div", { class: "grid" });
      for (const field of fields) grid.appendChild(this.control(field));
      set.appendChild(grid);
      this.body.appendChild(set);
    }
    append(this.body, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submitLabel), this.status));
    // novalidate: the service checks every rule and reports them all at once, at their fields.
    this.element = h("form", { novalidate: true, "aria-label": name }, this.alert, this.body);
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      onSubmit();
    });
    this.element.addEventListener("input", () => {
      this.dirty = true;
      onChange();
    });
  }

  private control(field: CatalogField): HTMLElement {
    const id = `${this.prefix}-${field.name}`;
    const helpId = `${id}-help`;
    const common = { id, name: field.name, "aria-describedby": helpId, required: field.required };
    let element: Element_;
    if (field.type === "CHOICE" && field.multiple) {
      const size = Math.min(Math.max(field.choices.length, 2), 6);
      element = h("select", { ...common, multiple: true, size }, ...field.choices.map((c) => h("option", { value: c.name }, c.label)));
    } else if (field.type === "CHOICE") {
      const empty = h("option", { value: "" }, field.required ? "Choose…" : "(none)");
      element = h("select", common, empty, ...field.choices.map((c) => h("option", { value: c.name }, c.label)));
    } else if (field.type === "BOOLEAN") {
      element = h("input", { ...common, type: "checkbox" });
    } else if (field.type === "TEXT" && (field.maxLength ?? 0) >= LONG_TEXT) {
      element = h("textarea", { ...common, rows: 3, maxlength: field.maxLength });
    } else {
      element = h("input", { ...common, ...inputAttributes(field), autocomplete: "off" });
    }
    const error = h("p", { class: "error", id: `${id}-error`, hidden: true });
    this.controls.set(field.name, { field, element, helpId, error });
    const mark = field.required ? h("span", { class: "required", "aria-hidden": "true" }, " *") : null;
    const label = h("label", { for: id }, field.label, mark);
    const help = h("p", { class: "help", id: helpId }, field.help, h("span", { class: "limits" }, limits(field)));
    const kind = field.multiple ? "multi" : field.type === "BOOLEAN" ? "check" : element instanceof HTMLTextAreaElement ? "single wide" : "single";
    return field.type === "BOOLEAN"
      ? h("div", { class: `field ${kind}`, "data-field": field.name }, h("div", { class: "check-row" }, element, label), help, error)
      : h("div", { class: `field ${kind}`, "data-field": field.name }, label, element, help, error);
  }

  /** The input object to send, and the values that are not even of the right type. */
  read(): { values: Values; problems: Problem[] } {
    const values: Values = {};
    const problems: Problem[] = [];
    for (const { field, element } of this.controls.values()) {
      if (element instanceof HTMLSelectElement && element.multiple) {
        const selected = [...element.selectedOptions].map((o) => o.value);
        if (selected.length) values[field.name] = selected;
        continue;
      }
      if (element instanceof HTMLInputElement && element.type === "checkbox") {
        values[field.name] = element.checked;
        continue;
      }
      const text = element.value.trim();
      if (!text) {
        values[field.name] = null;
        continue;
      }
      const problem = typeProblem(field, text);
      if (problem) problems.push({ name: field.name, message: problem });
      else values[field.name] = field.type === "INTEGER" ? Number(text) : text;
    }
    return { values, problems };
  }

  /** Show *values* (as the service stored them); the form is then clean. */
  fill(values: Values | null): void {
    for (const { field, element } of this.controls.values()) {
      const value = values?.[field.name] ?? null;
      if (element instanceof HTMLSelectElement && element.multiple) {
        const chosen = new Set(Array.isArray(value) ? value.map(String) : []);
        for (const option of element.options) option.selected = chosen.has(option.value);
      } else if (element instanceof HTMLInputElement && element.type === "checkbox") {
        element.checked = value === true;
      } else if (value === null) {
        element.value = "";
      } else if (field.type === "MONEY" && typeof value === "number") {
        element.value = value.toFixed(field.decimals ?? 2);
      } else {
        element.value = String(value);
      }
    }
    this.dirty = false;
  }

  /** Show each problem at its field (the rest above the form) and focus the first one. */
  showProblems(problems: Problem[]): void {
    this.clearProblems();
    const general: string[] = [];
    const byField = new Map<string, string[]>();
    for (const problem of problems) {
      if (problem.name && this.controls.has(problem.name)) {
        byField.set(problem.name, [...(byField.get(problem.name) ?? []), problem.message]);
      } else {
        general.push(problem.message);
      }
    }
    let first: Element_ | null = null;
    for (const [name, control] of this.controls) {
      const messages = byField.get(name);
      if (!messages) continue;
      control.error.textContent = messages.join(" ");
      control.error.hidden = false;
      control.element.setAttribute("aria-invalid", "true");
      control.element.setAttribute("aria-describedby", control.error.id);
      first ??= control.element;
    }
    const count = problems.length;
    const summary = byField.size ? `${count === 1 ? "1 problem" : `${count} problems`} to fix before saving.` : "";
    if (general.length || summary) {
      replace(this.alert, [summary, ...general].filter(Boolean).join(" "));
      this.alert.hidden = false;
    }
    if (first) {
      first.focus();
    } else if (general.length) {
      this.alert.setAttribute("tabindex", "-1");
      this.alert.focus();
    }
  }

  clearProblems(): void {
    for (const control of this.controls.values()) {
      control.error.hidden = true;
      control.error.textContent = "";
      control.element.removeAttribute("aria-invalid");
      control.element.setAttribute("aria-describedby", control.helpId);
    }
    this.alert.hidden = true;
    this.alert.replaceChildren();
  }

  setStatus(text: string): void {
    this.status.textContent = text;
  }

  setDisabled(disabled: boolean): void {
    this.body.disabled = disabled;
  }

  /** The labels of the selected options of a multi-select, in their order. */
  selected(): { field: CatalogField; labels: string[] }[] {
    const result = [];
    for (const { field, element } of this.controls.values()) {
      if (element instanceof HTMLSelectElement && element.multiple && element.selectedOptions.length) {
        result.push({ field, labels: [...element.selectedOptions].map((o) => o.text) });
      }
    }
    return result;
  }

  label(name: string): string {
    return this.controls.get(name)?.field.label ?? name;
  }
}

function inputAttributes(field: CatalogField): Record<string, string | number | null> {
  switch (field.type) {
    case "URL":
      return { type: "url", maxlength: field.maxLength, inputmode: "url" };
    case "DATE":
      return { type: "date" };
    // Amounts are typed as text (199.99) and sent as the exact text: no float ever sees them.
    case "MONEY":
    case "PERCENT":
      return { type: "text", inputmode: "decimal" };
    case "INTEGER":
      return { type: "text", inputmode: "numeric" };
    default:
      return { type: "text", maxlength: field.maxLength };
  }
}

/** Why *text* cannot even be sent as this field's type (the service checks the rest). */
function typeProblem(field: CatalogField, text: string): string | null {
  if (field.type === "MONEY" && !NUMBER.test(text)) {
    return "Enter an amount in dollars and cents, such as 199.99.";
  }
  if (field.type === "PERCENT" && !NUMBER.test(text)) return "Enter a percentage such as 13 or 14.97.";
  if (field.type === "INTEGER") {
    const value = Number(text);
    const [min, max] = [field.minValue ?? -(2 ** 31), field.maxValue ?? 2 ** 31 - 1];
    if (!WHOLE.test(text) || value < min || value > max) {
      return `Enter a whole number from ${number(min)} to ${number(max)}.`;
    }
  }
  return null;
}

/** The catalogue's limits in words ("$0 to $999,999.99"), unless its help already says them. */
function limits(field: CatalogField): string {
  const parts: string[] = [];
  if (field.minLength && field.maxLength) parts.push(`${field.minLength} to ${field.maxLength} characters`);
  else if (field.maxLength) parts.push(`at most ${number(field.maxLength)} characters`);
  if (field.minValue !== null && field.maxValue !== null) {
    const [unit, suffix] = field.type === "MONEY" ? ["$", ""] : field.type === "PERCENT" ? ["", " %"] : ["", ""];
    const decimals = field.decimals ?? 0;
    parts.push(`${unit}${number(field.minValue, decimals)} to ${unit}${number(field.maxValue, decimals)}${suffix}`);
  }
  if (field.maxSelections) parts.push(`up to ${field.maxSelections} choices`);
  const said = [field.maxLength, field.maxValue, field.maxSelections]
    .filter((n): n is number => n !== null)
    .some((n) => field.help.includes(String(n)) || field.help.includes(number(n, 2)));
  if (!parts.length || said) return "";
  const text = parts.join(" · ");
  return ` ${text[0].toUpperCase()}${text.slice(1)}.`;
}
