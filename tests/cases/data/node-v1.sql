BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0003');
CREATE TABLE api_tokens (
	id VARCHAR(16) NOT NULL, 
	user_id INTEGER NOT NULL, 
	label VARCHAR(128) NOT NULL, 
	secret_hash VARCHAR(64) NOT NULL, 
	permissions TEXT, 
	created_at FLOAT NOT NULL, 
	last_used_at FLOAT, 
	revoked_at FLOAT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	UNIQUE (secret_hash)
);
CREATE TABLE audit_log (
	id INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	user_name VARCHAR(128) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	camera_id VARCHAR(128), 
	client VARCHAR(64) NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE case_cameras (
	case_id INTEGER NOT NULL, 
	camera_id VARCHAR(64) NOT NULL, 
	PRIMARY KEY (case_id, camera_id), 
	FOREIGN KEY(case_id) REFERENCES cases (id)
);
INSERT INTO "case_cameras" VALUES(1,'cam01');
INSERT INTO "case_cameras" VALUES(1,'cam02');
CREATE TABLE case_counters (
	year INTEGER NOT NULL, 
	last INTEGER NOT NULL, 
	PRIMARY KEY (year)
);
INSERT INTO "case_counters" VALUES(2026,1);
CREATE TABLE case_tags (
	case_id INTEGER NOT NULL, 
	tag VARCHAR(64) NOT NULL, 
	PRIMARY KEY (case_id, tag), 
	FOREIGN KEY(case_id) REFERENCES cases (id)
);
CREATE TABLE cases (
	id INTEGER NOT NULL, 
	number VARCHAR(16) NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	description TEXT NOT NULL, 
	place VARCHAR(200), 
	reporter VARCHAR(128) NOT NULL, 
	assignee VARCHAR(128), 
	state VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	custody_seq INTEGER NOT NULL, 
	custody_head VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (number)
);
INSERT INTO "cases" VALUES(1,'2026-000001','old case','',NULL,'ann','bob','in_progress','2026-12-01 15:11:16.401300','2026-12-01 15:11:16.427586',7,'b5cc45f47eb42c70623c9ea7803d356578822b860b72027376c97ec85d9f8854');
CREATE TABLE custody_entries (
	id INTEGER NOT NULL, 
	case_id INTEGER NOT NULL, 
	seq INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	action VARCHAR(16) NOT NULL, 
	item_id INTEGER, 
	detail TEXT NOT NULL, 
	prev_hash VARCHAR(64) NOT NULL, 
	entry_hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_custody_case_seq UNIQUE (case_id, seq), 
	FOREIGN KEY(case_id) REFERENCES cases (id)
);
INSERT INTO "custody_entries" VALUES(1,1,1,'2026-12-01 15:11:16.401300','ann','create',NULL,'{"title":"old case"}','a47dee648610a731a4c6e5164e4f9949a9dae0175e55fad56f144cef9155e274','b3ab025d908707a6f4521191e6da583fb4fe81ee0dd27ed8e2cae175706922dd');
INSERT INTO "custody_entries" VALUES(2,1,2,'2026-12-01 15:11:16.418749','bob','attach',1,'{"camera":"cam01","kind":"snapshot","sha256":"141dd69bbd7ad5dec831b8698f1a00dbde5c11bcf1a2a2265f6da01c76309f39","size":22}','b3ab025d908707a6f4521191e6da583fb4fe81ee0dd27ed8e2cae175706922dd','c5cfab8d36a5abb01469d6c8f5fd7088556d20788610029ae7e52a166912abb1');
INSERT INTO "custody_entries" VALUES(3,1,3,'2026-12-01 15:11:16.423116','carl','attach',2,'{"camera":"cam02","kind":"clip","sha256":"36688e6fa5ebc896d871d3eb21917089a795ba9b676829d07e91aec6d383ba46","size":750}','c5cfab8d36a5abb01469d6c8f5fd7088556d20788610029ae7e52a166912abb1','f45aff3f76958d5fb614515308cc550d6bec532b39c6389c4a89e1b3b871f0d9');
INSERT INTO "custody_entries" VALUES(4,1,4,'2026-12-01 15:11:16.425623','lead','state',NULL,'{"assignee":"bob","from":"reported","to":"dispatched"}','f45aff3f76958d5fb614515308cc550d6bec532b39c6389c4a89e1b3b871f0d9','b4ca8d9cad37eaa33dc81ffb377cf6abd0d606d122f000f591987d18e753237d');
INSERT INTO "custody_entries" VALUES(5,1,5,'2026-12-01 15:11:16.427586','bob','state',NULL,'{"from":"dispatched","to":"in_progress"}','b4ca8d9cad37eaa33dc81ffb377cf6abd0d606d122f000f591987d18e753237d','4fd8ede354fa5f2a54d45f148d49f74fb5f49ba7caf7b24952cb7862d474cb46');
INSERT INTO "custody_entries" VALUES(6,1,6,'2026-12-01 15:11:16.429352','dora','view',1,'{}','4fd8ede354fa5f2a54d45f148d49f74fb5f49ba7caf7b24952cb7862d474cb46','95f70b54a4855baf0cf76082a97b9f9dd4945135ef21c3bc739572eaea8c6d0c');
INSERT INTO "custody_entries" VALUES(7,1,7,'2026-12-01 15:11:16.432785','dora','export',NULL,'{"fingerprint":"sha256:818fbaf139a4b2ea1888822ea9e4fa25a14ce8197ace3a591eca842bb62f6218","node":"old-node"}','95f70b54a4855baf0cf76082a97b9f9dd4945135ef21c3bc739572eaea8c6d0c','b5cc45f47eb42c70623c9ea7803d356578822b860b72027376c97ec85d9f8854');
CREATE TABLE evidence_items (
	id INTEGER NOT NULL, 
	case_id INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	media_type VARCHAR(64) NOT NULL, 
	camera_id VARCHAR(64) NOT NULL, 
	platform_id VARCHAR(64), 
	captured_at DATETIME NOT NULL, 
	stream_time_s FLOAT, 
	attached_at DATETIME NOT NULL, 
	attached_by VARCHAR(128) NOT NULL, 
	codec VARCHAR(16) NOT NULL, 
	width INTEGER NOT NULL, 
	height INTEGER NOT NULL, 
	duration_s FLOAT, 
	frames INTEGER NOT NULL, 
	note TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(case_id) REFERENCES cases (id)
);
INSERT INTO "evidence_items" VALUES(1,1,'snapshot','141dd69bbd7ad5dec831b8698f1a00dbde5c11bcf1a2a2265f6da01c76309f39',22,'image/jpeg','cam01','town','2026-11-30 10:00:00.123456',NULL,'2026-12-01 15:11:16.418749','bob','jpeg',640,360,NULL,1,NULL);
INSERT INTO "evidence_items" VALUES(2,1,'clip','36688e6fa5ebc896d871d3eb21917089a795ba9b676829d07e91aec6d383ba46',750,'video/mp4','cam02','town','2026-11-30 10:00:00.123456',12.04,'2026-12-01 15:11:16.423116','carl','h264',640,360,2.04,51,NULL);
CREATE TABLE sessions (
	secret_hash VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	csrf_token VARCHAR(64) NOT NULL, 
	client VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	last_seen_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	PRIMARY KEY (secret_hash), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE TABLE timeline_entries (
	id INTEGER NOT NULL, 
	case_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	text TEXT NOT NULL, 
	from_state VARCHAR(16), 
	to_state VARCHAR(16), 
	item_id INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(case_id) REFERENCES cases (id)
);
INSERT INTO "timeline_entries" VALUES(1,1,'2026-12-01 15:11:16.401300','ann','created','old case',NULL,NULL,NULL);
INSERT INTO "timeline_entries" VALUES(2,1,'2026-12-01 15:11:16.418749','bob','evidence','snapshot from cam01',NULL,NULL,1);
INSERT INTO "timeline_entries" VALUES(3,1,'2026-12-01 15:11:16.423116','carl','evidence','clip from cam02',NULL,NULL,2);
INSERT INTO "timeline_entries" VALUES(4,1,'2026-12-01 15:11:16.425623','lead','state','','reported','dispatched',NULL);
INSERT INTO "timeline_entries" VALUES(5,1,'2026-12-01 15:11:16.427586','bob','state','','dispatched','in_progress',NULL);
CREATE TABLE users (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	platforms TEXT NOT NULL, 
	cameras TEXT NOT NULL, 
	disabled BOOLEAN NOT NULL, 
	created_at FLOAT NOT NULL, 
	password_changed_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE wall_layouts (
	name VARCHAR(64) NOT NULL, 
	body TEXT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	updated_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE wall_tours (
	name VARCHAR(64) NOT NULL, 
	body TEXT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	updated_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (name)
);
CREATE INDEX ix_cases_state_created ON cases (state, created_at);
CREATE INDEX ix_cases_assignee_created ON cases (assignee, created_at);
CREATE INDEX ix_cases_created ON cases (created_at);
CREATE INDEX ix_case_tags_tag ON case_tags (tag);
CREATE INDEX ix_case_cameras_camera_id ON case_cameras (camera_id);
CREATE INDEX ix_timeline_entries_case_id ON timeline_entries (case_id);
CREATE INDEX ix_evidence_items_case_id ON evidence_items (case_id);
CREATE INDEX ix_evidence_items_sha256 ON evidence_items (sha256);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX audit_log_user_at ON audit_log (user_name, at);
CREATE INDEX audit_log_camera_at ON audit_log (camera_id, at);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
COMMIT;
