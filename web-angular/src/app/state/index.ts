/** The app's NgRx state: features and effects, provided in app.config.ts. */
export { AuthEffects } from './auth.effects';
export { ChatEffects } from './chat.effects';
export { chatFeature } from './chat.feature';
export { LiveEffects } from './live.effects';
export { RoomsEffects } from './rooms.effects';
export { roomsFeature } from './rooms.feature';
export { sessionFeature } from './session.feature';
export * from './actions';
