// The admin console: sign in, then walk a draft through the four steps with live progress.

import "./console.css";
import {
  Api,
  type Catalog,
  type CommitResult,
  type DraftSummary,
  type Saved,
  type Session,
  type SessionEvent,
  type SessionState,
  type UserError,
} from "./api";
import { h, replace } from "./dom";
import { CatalogForm, type Groups, type Problem } from "./forms";
import { clock, duration, tokenClaims } from "./format";
import { AuthFailure, type GraphQLError, RequestFailure } from "./graphql";
import { Live, type LinkStatus } from "./live";

// The token is kept for this tab only (sessionStorage), as is the draft it was on.
const TOKEN_KEY = "orchestrator.console.token";
const DRAFT_KEY = "orchestrator.console.draft";
const SOON_SECONDS = 15 * 60;

const PRODUCT_GROUPS: Groups = [
  ["About the product", ["productName", "productCode", "productDescription", "productYear", "productPicture"]],
  ["Classification", ["productCategory", "productStatus", "productGlCode", "userType", "privilege", "accessModifiers"]],
  ["Insurance (for insurance products)", ["insuranceType", "insuranceLimit"]],
  ["Prices (at least one)", ["generalPrice", "otStuPrice", "otNgPrice", "otPrPrice", "otNpPrice", "otRetPrice", "otLifePrice",
    "otaStuPrice", "otaNgPrice", "otaNpPrice", "otaRetPrice", "otaPrPrice", "otaLifePrice", "assocPrice", "affPrimPrice", "affPremPrice"]],
  ["Stock, shipping and tax", ["inventory", "shipping", "taxes"]],
  ["Availability", ["startDate", "endDate", "activeMembershipOnly"]],
  ["Information for buyers", ["productAdditionalInfo", "postPurchaseInfo"]],
];

const TARGET_GROUPS: Groups = [
  ["Where members live", ["province", "membershipCity"]],
  ["Who they are", ["accountGroup", "membershipCategory", "gender", "indigenousDetails", "language", "race"]],
  ["Affiliates", ["affiliateArea", "affiliateCity", "affiliateProvince", "eligibilityAffiliate"]],
  ["Employment", ["employmentStatus", "employmentBenefits", "positionFunding", "roleDescription", "workHours",
    "practiceYears", "earnings", "earningsSelfdirect", "earningsSelfindirect"]],
  ["Practice", ["practiceArea", "practiceServices", "practiceSettings", "clientAge"]],
  ["Preferences", ["membershipSearchTools", "practicePromotion", "psychotherapySupervision", "thirdParties"]],
  ["Education", ["cotoStatus", "otUniversity", "otGradYear", "otaCollege", "otaGradYear"]],
];

const STATE_WORDS: Record<SessionState, string> = {
  INITIATED: "Draft created",
  PRODUCT_ADDED: "Product saved",
  TARGET_CONFIGURED: "Target saved",
  COMMITTING: "Committing…",
  COMMITTED: "Committed",
  FAILED: "Commit failed",
};

/** Rule errors (userErrors) and input errors (top-level, with extensions.field) alike. */
function problems(userErrors: UserError[], inputErrors: GraphQLError[] = []): Problem[] {
  return [
    ...userErrors.map((e) => ({ name: e.field?.[1] ?? null, message: e.message })),
    ...inputErrors.map((e) => ({ name: e.extensions?.field?.[1] ?? null, message: e.message })),
  ];
}

class SignIn {
  readonly element: HTMLElement;
  private readonly alert: HTMLElement;
  private readonly input: HTMLTextAreaElement;

  constructor(submit: (token: string) => void) {
    this.alert = h("p", { class: "form-alert", role: "alert", hidden: true });
    this.input = h("textarea", { id: "token", name: "token", rows: 4, autocomplete: "off", spellcheck: "false", required: true,
      "aria-describedby": "token-help" });
    const form = h("form", { novalidate: true },
      h("label", { for: "token" }, "Access token"),
      this.input,
      h("p", { class: "help", id: "token-help" },
        "A JWT of an Admin or Main user. ", h("code", {}, "orchestrator dev"), " prints a link that signs you in."),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = this.input.value.trim().replace(/^Bearer\s+/i, "");
      if (token) submit(token);
      else this.say("Paste an access token first.");
    });
    this.element = h("section", { class: "card signin", "aria-labelledby": "signin-title" },
      h("h2", { id: "signin-title" }, "Sign in"), this.alert, form);
  }

  say(message: string | null): void {
    this.alert.textContent = message ?? "";
    this.alert.hidden = !message;
    if (message) this.input.setAttribute("aria-invalid", "true");
    else this.input.removeAttribute("aria-invalid");
  }

  focus(): void {
    this.input.focus();
  }
}

/** Everything about the open draft, and the drafts list beside it. */
class Workspace {
  readonly element: HTMLElement;
  private session: Session | null = null;
  private version = 0;
  private saving = false;
  private missedVersion = 0;
  private expired = false;
  private checkingExpiry = false;
  private committing = false;
  private soon = false;
  private deadline = 0;
  private unwatch: (() => void) | null = null;
  private retryDeadlines = new Map<HTMLElement, number>();

  private readonly product: CatalogForm;
  private readonly target: CatalogForm;
  private readonly draftsList = h("ul", { class: "drafts-list" });
  private readonly notice = h("div", { class: "notice", role: "status" });
  private readonly empty: HTMLElement;
  private readonly draft: HTMLElement;
  private readonly title = h("h2", { id: "draft-title" }, "Draft");
  private readonly stateBadge = h("span", { class: "badge" });
  private readonly expiry = h("span", { class: "expiry" });
  private readonly linkStatus = h("span", { class: "link-status" });
  private readonly bar = h("div", { class: "fill" });
  private readonly percent = h("span", { class: "percent" });
  private readonly progressbar: HTMLElement;
  private readonly warning = h("div", { class: "warning", role: "alert", hidden: true });
  private readonly steps: HTMLElement[];
  private readonly productNotice: HTMLElement;
  private readonly targetNotice: HTMLElement;
  private readonly chips = h("ul", { class: "chips" });
  private readonly commitHint = h("p", { class: "lead" });
  private readonly result = h("div", { class: "result", hidden: true, tabindex: -1 });
  private readonly failure = h("div", { class: "failure", role: "alert", hidden: true });
  private readonly log = h("ol", { class: "commit-log", "aria-label": "Commit progress", "aria-live": "polite" });
  private readonly commitButton = h("button", { type: "button", class: "primary" }, "Commit");
  private readonly cancelButton = h("button", { type: "button", class: "danger" }, "Cancel draft");
  private readonly dialog: HTMLDialogElement;
  private readonly dialogBody = h("div", { id: "confirm-body" });

  constructor(
    private readonly api: Api,
    catalog: Catalog,
    private readonly live: Live,
    private readonly signOut: (message: string) => void,
  ) {
    this.product = new CatalogForm("product", "Product", catalog.product, PRODUCT_GROUPS, "Save product", () => void this.saveProduct());
    this.target = new CatalogForm("target", "Audience target", catalog.audienceTarget, TARGET_GROUPS, "Save target", () => void this.saveTarget(),
      () => this.renderPreview());
    this.productNotice = this.remoteNotice(this.product);
    this.targetNotice = this.remoteNotice(this.target);

    this.progressbar = h("div", { role: "progressbar", "aria-label": "Progress of this draft", "aria-valuemin": 0,
      "aria-valuemax": 100, "aria-valuenow": 0, class: "progressbar" }, this.bar);
    const stepNames: [string, string][] = [["step-new", "New draft"], ["step-product", "Product"],
      ["step-target", "Audience target"], ["step-commit", "Commit"]];
    this.steps = stepNames.map(([id, name], i) => h("li", {}, h("a", { href: `#${id}` }, h("span", { class: "num" }, String(i + 1)),
      h("span", { class: "step-name" }, name), h("span", { class: "step-state" }))));

    const head = h("section", { class: "card draft-head", id: "step-new", "aria-labelledby": "draft-title" },
      h("div", { class: "head-row" }, this.title, this.stateBadge, this.expiry, this.linkStatus),
      h("div", { class: "progress-row" }, this.progressbar, this.percent),
      this.warning,
      h("nav", { "aria-label": "Steps" }, h("ol", { class: "stepper" }, ...this.steps)),
      this.result);

    const targetRule = catalog.audienceTarget.rules.map((r) => r.description).join(" ");
    const productSection = h("section", { class: "card step", id: "step-product", "aria-labelledby": "product-title" },
      h("h2", { id: "product-title" }, h("span", { class: "num" }, "2"), "Product"),
      h("p", { class: "lead" }, "Fields marked * are required; the service checks every rule and shows each problem at its " +
        "field. Saving again replaces the product."),
      this.productNotice, this.product.element);
    const targetSection = h("section", { class: "card step", id: "step-target", "aria-labelledby": "target-title" },
      h("h2", { id: "target-title" }, h("span", { class: "num" }, "3"), "Audience target ", h("small", {}, "(optional)")),
      h("p", { class: "lead" }, `Who may see the product. ${targetRule} To skip this step, `,
        h("a", { href: "#step-commit" }, "go straight to commit"), "."),
      h("section", { class: "preview", "aria-labelledby": "preview-title" },
        h("h3", { id: "preview-title" }, "Targeting preview"), this.chips),
      h("p", { class: "hint" }, "In a list, hold Ctrl (⌘ on a Mac) and click to choose several values."),
      this.targetNotice, this.target.element);
    const commitSection = h("section", { class: "card step", id: "step-commit", "aria-labelledby": "commit-title" },
      h("h2", { id: "commit-title" }, h("span", { class: "num" }, "4"), "Commit"),
      this.commitHint, this.failure, this.log,
      h("div", { class: "actions" }, this.commitButton, this.cancelButton));
    this.commitButton.addEventListener("click", () => this.confirmCommit());
    this.cancelButton.addEventListener("click", () => void this.cancel());

    const createButton = h("button", { type: "button", class: "primary" }, "Create product");
    const backButton = h("button", { type: "button" }, "Back");
    this.dialog = h("dialog", { "aria-labelledby": "confirm-title", "aria-describedby": "confirm-body" },
      h("h2", { id: "confirm-title" }, "Create this product in Dataverse?"), this.dialogBody,
      h("div", { class: "actions" }, backButton, createButton));
    backButton.addEventListener("click", () => this.dialog.close());
    createButton.addEventListener("click", () => {
      this.dialog.close();
      void this.commit();
    });

    this.draft = h("div", { class: "draft", hidden: true }, head, productSection, targetSection, commitSection, this.dialog);
    this.empty = h("section", { class: "card empty", "aria-labelledby": "empty-title" },
      h("h2", { id: "empty-title" }, "No draft open"),
      h("p", {}, "Press New draft to start a product: a draft lives 2 hours from its creation, however often you save it. " +
        "Your open drafts are listed beside this."));
    const newButton = h("button", { type: "button", class: "primary" }, "New draft");
    newButton.addEventListener("click", () => void this.newDraft());
    const aside = h("aside", { class: "card drafts", "aria-labelledby": "drafts-title" },
      h("h2", { id: "drafts-title" }, "Your drafts"), newButton, this.draftsList);
    this.element = h("div", { class: "workspace" }, aside, h("div", { class: "main-column" }, this.notice, this.empty, this.draft));
    setInterval(() => this.tick(), 1000);
  }

  private remoteNotice(form: CatalogForm): HTMLElement {
    const load = h("button", { type: "button" }, "Load the latest");
    const notice = h("div", { class: "remote", role: "status", hidden: true },
      h("span", {}, "This was changed in another tab or client. Your edits here are not saved. "), load);
    load.addEventListener("click", () => {
      form.fill(form === this.product ? this.session?.product ?? null : this.session?.audienceTarget ?? null);
      form.clearProblems();
      notice.hidden = true;
      this.renderPreview();
    });
    return notice;
  }

  /** Show the drafts list; open the remembered draft, else the most recent one. */
  async resume(): Promise<void> {
    const drafts = await this.guard(() => this.refreshDrafts());
    if (!drafts) return;
    const remembered = sessionStorage.getItem(DRAFT_KEY);
    const pick = drafts.find((d) => d.sessionId === remembered) ?? drafts[0];
    if (pick) await this.open(pick.sessionId);
  }

  private async refreshDrafts(): Promise<DraftSummary[]> {
    const drafts = await this.api.mySessions();
    const current = this.session && !this.expired ? this.session.sessionId : null;
    replace(this.draftsList, ...(drafts.length ? drafts.map((d) => this.draftItem(d, d.sessionId === current))
      : [h("li", { class: "none" }, "No open drafts.")]));
    return drafts;
  }

  private draftItem(draft: DraftSummary, current: boolean): HTMLElement {
    const name = draft.product?.productName ?? "Untitled";
    const code = draft.product?.productCode ? ` (${draft.product.productCode})` : "";
    const when = `created ${clock(new Date(draft.createdAt))}`;
    if (current) {
      return h("li", { "aria-current": "true" }, h("strong", {}, name + code), h("span", { class: "sub" }, `${when} · open`));
    }
    const button = h("button", { type: "button", class: "link" }, `Open draft ${name}${code}`);
    button.addEventListener("click", () => void this.open(draft.sessionId));
    return h("li", {}, button, h("span", { class: "sub" }, when));
  }

  private async newDraft(): Promise<void> {
    const saved = await this.guard(() => this.api.createSession());
    if (!saved) return;
    if (!saved.session) {
      this.say(problems(saved.userErrors).map((p) => p.message).join(" "));
      return;
    }
    this.say("");
    this.show(saved.session);
    void this.guard(() => this.refreshDrafts());
    this.draft.querySelector<HTMLElement>("#step-product")?.scrollIntoView({ block: "start" });
    this.draft.querySelector<HTMLInputElement>("[name=productName]")?.focus();
  }

  private async open(sessionId: string): Promise<void> {
    const session = await this.guard(() => this.api.session(sessionId));
    if (session === undefined) return;
    if (session === null) {
      this.say("That draft no longer exists: it expired, was cancelled or was committed.");
      void this.guard(() => this.refreshDrafts());
      return;
    }
    this.say("");
    this.show(session);
    void this.guard(() => this.refreshDrafts());
  }

  /** Make *session* the open draft: fill the forms and follow its changes live. */
  private show(session: Session): void {
    this.unwatch?.();
    this.session = session;
    this.version = session.version;
    this.expired = false;
    this.committing = session.state === "COMMITTING";
    this.soon = session.progress.expiringSoon;
    this.deadline = Date.now() + session.progress.secondsRemaining * 1000;
    this.retryDeadlines.clear();
    this.log.replaceChildren();
    this.result.hidden = true;
    this.warning.hidden = true;
    this.warning.classList.remove("expired");
    sessionStorage.setItem(DRAFT_KEY, session.sessionId);
    for (const form of [this.product, this.target]) form.clearProblems();
    this.product.fill(session.product);
    this.target.fill(session.audienceTarget);
    this.product.setStatus("");
    this.target.setStatus("");
    this.productNotice.hidden = this.targetNotice.hidden = true;
    this.empty.hidden = true;
    this.draft.hidden = false;
    this.render();
    if (session.state === "COMMITTED") {
      this.showCommitted(String(session.product?.productCode ?? ""), session.productGuid, session.targetGuid);
    }
    this.unwatch = this.live.watch(session.sessionId, {
      event: (event) => this.onEvent(event),
      error: (message, code) => this.onStreamError(message, code),
    });
  }

  /** Close the draft view, saying why. */
  private close(message: string): void {
    this.unwatch?.();
    this.unwatch = null;
    this.session = null;
    sessionStorage.removeItem(DRAFT_KEY);
    this.draft.hidden = true;
    this.empty.hidden = false;
    this.say(message);
    void this.guard(() => this.refreshDrafts());
  }

  setLinkStatus(status: LinkStatus): void {
    const words = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", idle: "" };
    this.linkStatus.textContent = words[status];
    this.linkStatus.dataset.status = status;
  }

  private onEvent(event: SessionEvent): void {
    const session = this.session;
    if (!session || event.sessionId !== session.sessionId) return;
    const newer = event.version > this.version;
    if (newer || event.type === "SNAPSHOT") {
      session.state = event.state;
      session.progress = { ...event.progress, secondsRemaining: session.progress.secondsRemaining };
    }
    switch (event.type) {
      case "SNAPSHOT":
      case "PRODUCT_ADDED":
      case "PRODUCT_UPDATED":
      case "TARGET_CONFIGURED":
        if (newer) this.changedElsewhere(event.version);
        break;
      case "COMMIT_STARTED":
        this.committing = true;
        this.failure.hidden = true;
        this.logLine(event.recovering ? "Taking over an interrupted commit…" : "Writing the product and its target to Dataverse…");
        break;
      case "COMMIT_RETRYING": {
        const delay = event.retryAt ? new Date(event.retryAt).getTime() - new Date(event.occurredAt).getTime() : 0;
        const line = this.logLine("", "retry");
        this.retryDeadlines.set(line, Date.now() + Math.max(0, delay));
        const cause = (event.cause ?? "Dataverse did not answer").replace(/\.+$/, "");
        line.dataset.text = `Attempt ${(event.attempt ?? 2) - 1} failed: ${cause}. Attempt ${event.attempt ?? 2}`;
        break;
      }
      case "COMMITTED":
        this.committing = false;
        this.showCommitted(event.productCode, event.productGuid, event.targetGuid);
        break;
      case "FAILED":
        this.committing = false;
        this.showFailure(event.errors);
        break;
      case "CANCELLED":
        this.close("This draft was cancelled.");
        return;
      case "EXPIRING_SOON":
        this.soon = true;
        break;
      case "EXPIRED":
        if (this.expired) void this.guard(() => this.refreshDrafts());
        this.markExpired();
        break;
    }
    if (newer) this.version = event.version;
    this.render();
  }

  private onStreamError(message: string, code: string | null): void {
    if (code === "UNAUTHENTICATED" || code === "FORBIDDEN") this.signOut(`Signed out: ${message}`);
    else if (code === "SESSION_NOT_FOUND" && this.session?.state !== "COMMITTED") this.markExpired();
    else if (this.session?.state !== "COMMITTED") this.say(`Live updates stopped: ${message} Reload the page to resume.`);
  }

  /** Someone changed the draft elsewhere: load it, and refill the forms nobody is editing. */
  private changedElsewhere(version: number): void {
    if (this.saving) {
      this.missedVersion = Math.max(this.missedVersion, version);
      return;
    }
    const sessionId = this.session?.sessionId;
    if (!sessionId) return;
    void this.guard(async () => {
      const fresh = await this.api.session(sessionId);
      if (!fresh || this.session?.sessionId !== sessionId || fresh.version < this.version) return;
      const before = this.session;
      this.session = { ...fresh, progress: { ...fresh.progress } };
      this.deadline = Date.now() + fresh.progress.secondsRemaining * 1000;
      this.version = fresh.version;
      this.refill(this.product, this.productNotice, before.product, fresh.product);
      this.refill(this.target, this.targetNotice, before.audienceTarget, fresh.audienceTarget);
      this.render();
      void this.refreshDrafts();
    });
  }

  private refill(form: CatalogForm, notice: HTMLElement, before: unknown, after: Record<string, unknown> | null): void {
    if (JSON.stringify(before) === JSON.stringify(after)) return;
    if (form.dirty) {
      notice.hidden = false;
    } else {
      form.fill(after);
      form.clearProblems();
      form.setStatus("Updated from another tab or client.");
    }
  }

  private async saveProduct(): Promise<void> {
    const { values, problems: typeProblems } = this.product.read();
    if (typeProblems.length) {
      this.product.showProblems(typeProblems);
      return;
    }
    await this.save(this.product, this.productNotice, (id, v) => this.api.addProduct(id, values, v), "Product saved");
  }

  private async saveTarget(): Promise<void> {
    const { values } = this.target.read();
    await this.save(this.target, this.targetNotice, (id, v) => this.api.configureTarget(id, values, v),
      Object.keys(values).length ? "Target saved" : "Saved: open to everyone");
  }

  private async save(form: CatalogForm, notice: HTMLElement,
    send: (sessionId: string, version: number) => Promise<Saved>, done: string): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.saving = true;
    form.setStatus("Saving…");
    try {
      const saved = await this.guard(() => send(session.sessionId, this.version));
      if (!saved) {
        form.setStatus("");
        return;
      }
      if (!saved.session) {
        form.setStatus("Not saved.");
        form.showProblems(problems(saved.userErrors, saved.inputErrors));
        return;
      }
      form.clearProblems();
      notice.hidden = true;
      this.session = saved.session;
      this.version = Math.max(this.version, saved.session.version);
      form.fill(form === this.product ? saved.session.product : saved.session.audienceTarget);
      form.setStatus(`${done} (version ${saved.session.version}).`);
      this.render();
      void this.guard(() => this.refreshDrafts());
    } finally {
      this.saving = false;
      if (this.missedVersion > this.version) this.changedElsewhere(this.missedVersion);
      this.missedVersion = 0;
    }
  }

  private confirmCommit(): void {
    const session = this.session;
    if (!session?.product) return;
    const product = session.product;
    const chosen = Object.entries(session.audienceTarget ?? {}).filter(([, v]) => v && v.length);
    const target = chosen.length
      ? `members matching any of: ${chosen.map(([name, v]) => `${this.target.label(name)} (${v!.length})`).join(", ")}.`
      : session.audienceTarget ? "open to everyone (an empty target)." : "open to everyone (no target was saved).";
    replace(this.dialogBody,
      h("p", {}, "Product: ", h("strong", {}, String(product.productName)), ` (${String(product.productCode)})`),
      h("p", {}, `Target: ${target}`),
      this.product.dirty || this.target.dirty
        ? h("p", { class: "warn" }, "You have unsaved changes: only what was saved is committed.") : null,
      h("p", {}, "Both are written to Dataverse together, exactly once."));
    this.dialog.showModal();
  }

  private async commit(): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.committing = true;
    this.failure.hidden = true;
    this.render();
    const result = await this.guard(() => this.api.commit(session.sessionId));
    if (this.session?.sessionId !== session.sessionId) return;
    this.committing = false;
    if (result) this.commitDone(result);
    this.render();
  }

  private commitDone(result: CommitResult): void {
    if (result.success) {
      this.showCommitted(result.productCode, result.productGuid, result.targetGuid);
    } else {
      this.showFailure([...result.errors, ...result.userErrors.map((e) => e.message)]);
    }
  }

  private showCommitted(code: string | null, productGuid: string | null, targetGuid: string | null): void {
    const session = this.session;
    if (!session) return;
    session.state = "COMMITTED";
    session.progress = { ...session.progress, state: "COMMITTED", percentage: 100, canCommit: false,
      steps: { productAdded: true, targetConfigured: true, committed: true } };
    this.unwatch?.();
    this.unwatch = null;
    this.failure.hidden = true;
    sessionStorage.removeItem(DRAFT_KEY);
    replace(this.result,
      h("h3", {}, "Created in Dataverse"),
      h("dl", {},
        h("dt", {}, "Product code"), h("dd", {}, code ?? ""),
        h("dt", {}, "Product GUID"), h("dd", {}, h("code", { class: "guid", "data-guid": "product" }, productGuid ?? "")),
        h("dt", {}, "Target GUID"), h("dd", {}, h("code", { class: "guid", "data-guid": "target" }, targetGuid ?? ""))),
      h("p", {}, "Press New draft to create another product."));
    const wasHidden = this.result.hidden;
    this.result.hidden = false;
    if (wasHidden) {
      this.result.scrollIntoView({ block: "center" });
      this.result.focus({ preventScroll: true });
    }
    void this.guard(() => this.refreshDrafts());
  }

  private showFailure(errors: string[]): void {
    replace(this.failure, h("strong", {}, "The commit failed. "), errors.join(" ") || "Dataverse refused it.",
      " Fix the draft if needed and press Commit again: committing again never creates a duplicate.");
    this.failure.hidden = false;
  }

  private async cancel(): Promise<void> {
    const session = this.session;
    if (!session) return;
    if (!window.confirm("Cancel this draft? Its product and target are deleted and its product code is released.")) return;
    const result = await this.guard(() => this.api.cancelSession(session.sessionId));
    if (!result) return;
    if (result.cancelled) this.close("Draft cancelled.");
    else this.say(result.userErrors.map((e) => e.message).join(" "));
  }

  private markExpired(): void {
    if (this.expired || !this.session || this.session.state === "COMMITTED") return;
    this.expired = true;
    this.unwatch?.();
    this.unwatch = null;
    sessionStorage.removeItem(DRAFT_KEY);
    this.warning.classList.add("expired");
    this.warning.textContent = "This draft has expired: its product and target are gone and its product code is released. " +
      "Press New draft to start again.";
    this.warning.hidden = false;
    this.render();
    void this.guard(() => this.refreshDrafts());
  }

  /** Time is up by our clock: ask the service (our count of seconds may be a little early). */
  private async checkExpiry(sessionId: string): Promise<void> {
    if (this.checkingExpiry) return;
    this.checkingExpiry = true;
    try {
      const fresh = await this.guard(() => this.api.session(sessionId));
      if (this.session?.sessionId !== sessionId) return;
      if (fresh === null) this.markExpired();
      else if (fresh) this.deadline = Date.now() + Math.max(fresh.progress.secondsRemaining, 1) * 1000;
    } finally {
      this.checkingExpiry = false;
    }
  }

  private logLine(text: string, kind = ""): HTMLElement {
    const line = h("li", { class: kind }, text);
    this.log.appendChild(line);
    return line;
  }

  /** Once a second: time left, the 15-minute warning, retry countdowns. */
  private tick(): void {
    for (const [line, at] of this.retryDeadlines) {
      const left = Math.ceil((at - Date.now()) / 1000);
      line.textContent = `${line.dataset.text} ${left > 0 ? `in ${left} s…` : "started…"}`;
    }
    const session = this.session;
    if (!session || this.expired || session.state === "COMMITTED") {
      this.expiry.textContent = "";
      return;
    }
    const left = (this.deadline - Date.now()) / 1000;
    if (left <= 0 && !this.committing && session.state !== "COMMITTING") {
      this.expiry.textContent = "expiring…";
      void this.checkExpiry(session.sessionId);
      return;
    }
    this.expiry.textContent = `expires in ${duration(left)}`;
    if ((this.soon || left <= SOON_SECONDS) && this.warning.hidden) {
      this.warning.textContent = "Less than 15 minutes left: commit this draft before it expires (saving does not extend it).";
      this.warning.hidden = false;
    }
  }

  private render(): void {
    const session = this.session;
    if (!session) return;
    const progress = session.progress;
    const closed = this.expired || session.state === "COMMITTED";
    const busy = this.committing || session.state === "COMMITTING";
    this.title.textContent = session.product?.productName ? `Draft: ${String(session.product.productName)}` : "Draft";
    this.stateBadge.textContent = this.expired ? "Expired" : busy ? STATE_WORDS.COMMITTING : STATE_WORDS[session.state];
    this.stateBadge.dataset.state = this.expired ? "EXPIRED" : session.state;
    this.progressbar.setAttribute("aria-valuenow", String(progress.percentage));
    this.progressbar.setAttribute("aria-valuetext", `${progress.percentage} %: ${STATE_WORDS[session.state]}`);
    this.bar.style.width = `${progress.percentage}%`;
    this.percent.textContent = `${progress.percentage} %`;
    const done = [true, progress.steps.productAdded, progress.steps.targetConfigured, progress.steps.committed];
    const current = done.indexOf(false);
    this.steps.forEach((step, i) => {
      const state = done[i] ? "done" : i === current ? "current" : "todo";
      step.dataset.state = state;
      if (i === current) step.setAttribute("aria-current", "step");
      else step.removeAttribute("aria-current");
      step.querySelector(".step-state")!.textContent =
        state === "done" ? (i === 2 && !session.audienceTarget && session.state !== "COMMITTED" ? "skipped" : "done")
          : i === 2 ? "optional" : state === "current" ? "to do" : "";
    });
    if (this.expired) {
      for (const step of this.steps) {
        step.querySelector(".step-state")!.textContent = "";
        step.removeAttribute("aria-current");
        if (step.dataset.state === "current") step.dataset.state = "todo";
      }
    }
    this.product.setDisabled(closed || busy);
    this.target.setDisabled(closed || busy || !session.product);
    this.commitButton.disabled = closed || busy || !progress.canCommit;
    this.cancelButton.disabled = closed || busy;
    this.commitHint.textContent = session.state === "COMMITTED" ? "The product and its target are in Dataverse."
      : busy ? "Committing: the steps appear below as they happen."
        : !session.product ? "Save a product first; the audience target is optional."
          : "Writes the product and its target to Dataverse together, exactly once. You confirm first.";
    this.renderPreview();
    this.tick();
  }

  private renderPreview(): void {
    const selected = this.target.selected();
    replace(this.chips, ...(selected.length
      ? selected.map(({ field, labels }) => h("li", { class: "chip" }, h("strong", {}, `${field.label}: `),
        labels.length > 3 ? `${labels.length} selected` : labels.join(", ")))
      : [h("li", { class: "chip open" }, "Open to all")]));
  }

  /** Say something about the drafts as a whole (above the draft). */
  private say(message: string): void {
    this.notice.textContent = message;
    this.notice.hidden = !message;
  }

  /** Run a request; auth failures sign out, other failures are said. Undefined when it failed. */
  private async guard<T>(run: () => Promise<T>): Promise<T | undefined> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof AuthFailure) this.signOut(authMessage(error));
      else if (error instanceof RequestFailure) this.say(error.message);
      else throw error;
      return undefined;
    }
  }

  dispose(): void {
    this.unwatch?.();
  }
}

function authMessage(error: AuthFailure): string {
  return error.code === "FORBIDDEN"
    ? `This token's user may not create products (Admin or Main privilege is needed): ${error.message}`
    : `The service refused this access token: ${error.message}`;
}

/** The page: the sign-in form, or the workspace of a signed-in user. */
class ConsolePage {
  private readonly main = h("main", { id: "main" });
  private readonly who = h("div", { class: "who" });
  private readonly signIn = new SignIn((token) => void this.start(token));
  private workspace: Workspace | null = null;
  private live: Live | null = null;
  private expiryTimer = 0;

  constructor(root: HTMLElement) {
    replace(root,
      h("a", { class: "skip", href: "#main" }, "Skip to content"),
      h("header", { class: "topbar" }, h("div", { class: "brand" }, h("h1", {}, "Product orchestrator"),
        h("span", { class: "tagline" }, "Admin console")), this.who),
      this.main);
  }

  async start(token: string): Promise<void> {
    const claims = tokenClaims(token);
    if (claims?.exp && claims.exp * 1000 <= Date.now()) {
      const when = new Date(claims.exp * 1000);
      this.showSignIn(`This access token expired at ${clock(when)} on ${when.toLocaleDateString("en-CA")}: ` +
        "get a new one and sign in again.");
      return;
    }
    let catalog: Catalog;
    try {
      catalog = await Api.catalog(token);
    } catch (error) {
      if (error instanceof AuthFailure) this.showSignIn(authMessage(error));
      else if (error instanceof RequestFailure) this.showSignIn(error.message);
      else throw error;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    this.live = new Live(token, (status) => this.workspace?.setLinkStatus(status),
      () => this.showSignIn("The service refused this access token for live updates: sign in again."));
    this.workspace = new Workspace(new Api(token, catalog), catalog, this.live, (message) => this.showSignIn(message));
    const signOut = h("button", { type: "button", class: "quiet" }, "Sign out");
    signOut.addEventListener("click", () => this.showSignIn("Signed out."));
    replace(this.who, h("span", {}, `Signed in as ${claims?.sub ?? "unknown user"}`), signOut);
    replace(this.main, this.workspace.element);
    if (claims?.exp) {
      const ms = claims.exp * 1000 - Date.now();
      // Past ~24 days setTimeout fires at once; such a token outlives any tab anyway.
      if (ms < 2 ** 31 - 1) {
        this.expiryTimer = window.setTimeout(() => this.showSignIn("Your access token has expired: sign in again."), ms);
      }
    }
    await this.workspace.resume();
  }

  showSignIn(message: string | null): void {
    window.clearTimeout(this.expiryTimer);
    this.workspace?.dispose();
    this.workspace = null;
    this.live?.dispose();
    this.live = null;
    sessionStorage.removeItem(TOKEN_KEY);
    this.who.replaceChildren();
    replace(this.main, this.signIn.element);
    this.signIn.say(message);
    this.signIn.focus();
  }
}

function boot(): void {
  const root = document.getElementById("app");
  if (!root) return;
  const page = new ConsolePage(root);
  // Opening /#token=<JWT> signs in; the token then leaves the address bar (and history).
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) history.replaceState(null, "", location.pathname + location.search);
  const token = fromUrl ?? sessionStorage.getItem(TOKEN_KEY);
  if (token) void page.start(token);
  else page.showSignIn(null);
}

boot();
