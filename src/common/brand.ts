/**
 * How a tenant's hosted pages look (issue #18): what the branding service resolves for a tenant
 * and the page renderer applies. Every field but the name is optional; absent ones fall back to
 * the service's own look. Values are already validated when they reach a page (colours are
 * `#rrggbb`, URLs are https or same-origin paths, texts are plain text), and the renderer still
 * escapes every one of them.
 */
export interface Brand {
  displayName: string;
  /** A same-origin path of the logo the service stores and serves (never a third-party host). */
  logoUrl?: string;
  colors?: {
    primary?: string;
    background?: string;
    text?: string;
  };
  /** An email address or an https URL, shown on error and help texts. */
  supportContact?: string;
  texts?: {
    heading?: string;
    footer?: string;
    legalLinks?: { label: string; url: string }[];
  };
}
