// The first admin of the server under test (created at its first start).
export const ADMIN_EMAIL = "admin@example.test";
export const ADMIN_PASSWORD = "correct horse battery";
