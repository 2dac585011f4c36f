import { inject } from '@angular/core';
import { CanActivateFn, Router, Routes } from '@angular/router';

import { SessionService } from './core/session.service';

/** Signed-in pages: without a session, to the login page, and back here after it. */
const signedIn: CanActivateFn = (_route, state) =>
  inject(SessionService).session() !== null ||
  inject(Router).createUrlTree(['/login'], { queryParams: { returnUrl: state.url } });

/** The login and sign-up pages: a signed-in user goes to the rooms. */
const signedOut: CanActivateFn = () =>
  inject(SessionService).session() === null || inject(Router).createUrlTree(['/rooms']);

export const routes: Routes = [
  { path: '', pathMatch: 'full', redirectTo: 'rooms' },
  {
    path: 'login',
    title: 'Sign in · Banter',
    canActivate: [signedOut],
    loadComponent: () => import('./pages/login.page').then((m) => m.LoginPage),
  },
  {
    path: 'register',
    title: 'Create an account · Banter',
    canActivate: [signedOut],
    loadComponent: () => import('./pages/register.page').then((m) => m.RegisterPage),
  },
  {
    path: '',
    canActivate: [signedIn],
    loadComponent: () => import('./pages/shell.page').then((m) => m.ShellPage),
    children: [
      { path: 'rooms', title: 'Rooms · Banter', loadComponent: () => import('./pages/welcome.page').then((m) => m.WelcomePage) },
      { path: 'rooms/:id', title: 'Chat · Banter', loadComponent: () => import('./pages/chat.page').then((m) => m.ChatPage) },
      { path: 'profile', title: 'Profile · Banter', loadComponent: () => import('./pages/profile.page').then((m) => m.ProfilePage) },
    ],
  },
  { path: '**', redirectTo: 'rooms' },
];
