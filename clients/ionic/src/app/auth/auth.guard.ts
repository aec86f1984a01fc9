import { inject } from "@angular/core";
import { type CanMatchFn, Router } from "@angular/router";
import { ApiService } from "../api/api.service";

/** The inside area is for a logged-in user; anyone else is sent to the login page. */
export const authGuard: CanMatchFn = () => inject(ApiService).isLoggedIn() || inject(Router).parseUrl("/login");

/** The login and signup pages: a logged-in user goes straight in (the tutorial's auto-login). */
export const guestGuard: CanMatchFn = () => !inject(ApiService).isLoggedIn() || inject(Router).parseUrl("/inside");
