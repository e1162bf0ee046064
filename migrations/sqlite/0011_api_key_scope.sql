-- What an API key may do: 'read', 'write' or 'admin'. Keys made before
-- scopes existed could do everything, so they stay 'admin'.
ALTER TABLE api_key ADD COLUMN scope VARCHAR(16) NOT NULL DEFAULT 'admin';
