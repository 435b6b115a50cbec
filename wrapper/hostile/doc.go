// Package hostile holds no code: its tests are a job user who wants root's
// hooks to delete, read, write or hang something. Each test states the
// attacker's goal, runs the hooks as slurmd runs them (the built binary, as
// root, with only Slurm's variables), and checks the hook's exit code, its
// duration and that nothing outside the attacker's own files changed.
//
// The tests need root and add two users, skmallory (the attacker) and
// skvictim, if they are missing.
package hostile
