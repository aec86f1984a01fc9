import type { Routes } from "@angular/router";
import { authGuard, guestGuard } from "./auth/auth.guard";

export const routes: Routes = [
  { path: "", pathMatch: "full", redirectTo: "inside" },
  { path: "login", canMatch: [guestGuard], loadComponent: () => import("./pages/login.page").then((m) => m.LoginPage) },
  { path: "signup", canMatch: [guestGuard], loadComponent: () => import("./pages/signup.page").then((m) => m.SignupPage) },
  { path: "inside", canMatch: [authGuard], loadComponent: () => import("./pages/inside.page").then((m) => m.InsidePage) },
  // A logged-out visitor of /inside matches no route above and lands here.
  { path: "**", redirectTo: "login" },
];
