// Package chaos holds socsync's crash and fault tests: the hub runs as a real process that the
// tests kill, pause and starve, against the emulator in the test process. See the tests.
package chaos
