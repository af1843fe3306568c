// esbuild bundles the stylesheet imported by main.ts into console.css.
declare module "*.css";
