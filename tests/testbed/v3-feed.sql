-- The bed's stand-in for a DTS job from a 2.x source DB into the 3.x target DB (db-v3, database
-- `nacos`, schema fixtures/sql/nacos-mysql-3.1.sql). db-v3 is a MariaDB replica of db-source whose
-- replicated `nacos` lands in `nacos_src` (replicate-rewrite-db, 2.x schema); these triggers, run
-- for replicated row events (slave_run_triggers_for_rbr=YES), carry every change on into the 3.x
-- tables, transforming where the schemas differ, the way a migration job would:
--   config_info, config_tags_relation, tenant_info, users, roles, permissions: copied as they are
--     (tenant '' stays ''; mirroring it to 'public' is the 3.x nodes' own job, see
--     ConfigMigrateService.doCheckNamespaceMigrate, at start-up and in DumpChangeConfigWorker);
--   config_info_beta -> config_info_gray, gray_name 'beta', rule {type beta, expr = beta_ips};
--   config_info_tag  -> config_info_gray, gray_name 'tag_<tag>', rule {type tag, expr = tag};
--     the names and rules 3.x itself gives them when it migrates these tables
--     (ConfigMigrateService.checkMigrateBeta / checkMigrateTag, BetaGrayRule, TagGrayRule,
--     GrayRuleManager.serializeConfigGrayPersistInfo: Gson of ConfigGrayPersistInfo);
--   his_config_info and config_info_aggr: not carried (the 3.x history is the target's own).
-- Loaded by tests/testbed/testbed before replication starts; replication then replays the source's
-- binlog from its first event, so the full load and the incremental feed are one stream.

DELIMITER //

CREATE OR REPLACE TRIGGER ci_ai AFTER INSERT ON config_info FOR EACH ROW
  INSERT INTO nacos.config_info (id, data_id, group_id, content, md5, gmt_create, gmt_modified, src_user,
    src_ip, app_name, tenant_id, c_desc, c_use, effect, type, c_schema, encrypted_data_key)
  VALUES (NEW.id, NEW.data_id, NEW.group_id, NEW.content, NEW.md5, NEW.gmt_create, NEW.gmt_modified,
    NEW.src_user, NEW.src_ip, NEW.app_name, NEW.tenant_id, NEW.c_desc, NEW.c_use, NEW.effect, NEW.type,
    NEW.c_schema, NEW.encrypted_data_key)
  ON DUPLICATE KEY UPDATE content = VALUES(content), md5 = VALUES(md5), gmt_modified = VALUES(gmt_modified),
    src_user = VALUES(src_user), src_ip = VALUES(src_ip), app_name = VALUES(app_name), c_desc = VALUES(c_desc),
    c_use = VALUES(c_use), effect = VALUES(effect), type = VALUES(type), c_schema = VALUES(c_schema),
    encrypted_data_key = VALUES(encrypted_data_key)//
CREATE OR REPLACE TRIGGER ci_au AFTER UPDATE ON config_info FOR EACH ROW
  INSERT INTO nacos.config_info (id, data_id, group_id, content, md5, gmt_create, gmt_modified, src_user,
    src_ip, app_name, tenant_id, c_desc, c_use, effect, type, c_schema, encrypted_data_key)
  VALUES (NEW.id, NEW.data_id, NEW.group_id, NEW.content, NEW.md5, NEW.gmt_create, NEW.gmt_modified,
    NEW.src_user, NEW.src_ip, NEW.app_name, NEW.tenant_id, NEW.c_desc, NEW.c_use, NEW.effect, NEW.type,
    NEW.c_schema, NEW.encrypted_data_key)
  ON DUPLICATE KEY UPDATE content = VALUES(content), md5 = VALUES(md5), gmt_modified = VALUES(gmt_modified),
    src_user = VALUES(src_user), src_ip = VALUES(src_ip), app_name = VALUES(app_name), c_desc = VALUES(c_desc),
    c_use = VALUES(c_use), effect = VALUES(effect), type = VALUES(type), c_schema = VALUES(c_schema),
    encrypted_data_key = VALUES(encrypted_data_key)//
CREATE OR REPLACE TRIGGER ci_ad AFTER DELETE ON config_info FOR EACH ROW
  DELETE FROM nacos.config_info
  WHERE data_id = OLD.data_id AND group_id = OLD.group_id AND tenant_id = OLD.tenant_id//

CREATE OR REPLACE TRIGGER beta_ai AFTER INSERT ON config_info_beta FOR EACH ROW
  INSERT INTO nacos.config_info_gray (data_id, group_id, tenant_id, gray_name, gray_rule, content, md5,
    src_user, src_ip, gmt_create, gmt_modified, app_name, encrypted_data_key)
  VALUES (NEW.data_id, NEW.group_id, NEW.tenant_id, 'beta',
    CONCAT('{"type":"beta","version":"1.0.0","expr":', JSON_QUOTE(IFNULL(NEW.beta_ips, '')), ',"priority":2147483647}'),
    NEW.content, NEW.md5, NEW.src_user, NEW.src_ip, NEW.gmt_create, NEW.gmt_modified, NEW.app_name,
    NEW.encrypted_data_key)
  ON DUPLICATE KEY UPDATE gray_rule = VALUES(gray_rule), content = VALUES(content), md5 = VALUES(md5),
    src_user = VALUES(src_user), src_ip = VALUES(src_ip), gmt_modified = VALUES(gmt_modified),
    app_name = VALUES(app_name), encrypted_data_key = VALUES(encrypted_data_key)//
CREATE OR REPLACE TRIGGER beta_au AFTER UPDATE ON config_info_beta FOR EACH ROW
  INSERT INTO nacos.config_info_gray (data_id, group_id, tenant_id, gray_name, gray_rule, content, md5,
    src_user, src_ip, gmt_create, gmt_modified, app_name, encrypted_data_key)
  VALUES (NEW.data_id, NEW.group_id, NEW.tenant_id, 'beta',
    CONCAT('{"type":"beta","version":"1.0.0","expr":', JSON_QUOTE(IFNULL(NEW.beta_ips, '')), ',"priority":2147483647}'),
    NEW.content, NEW.md5, NEW.src_user, NEW.src_ip, NEW.gmt_create, NEW.gmt_modified, NEW.app_name,
    NEW.encrypted_data_key)
  ON DUPLICATE KEY UPDATE gray_rule = VALUES(gray_rule), content = VALUES(content), md5 = VALUES(md5),
    src_user = VALUES(src_user), src_ip = VALUES(src_ip), gmt_modified = VALUES(gmt_modified),
    app_name = VALUES(app_name), encrypted_data_key = VALUES(encrypted_data_key)//
CREATE OR REPLACE TRIGGER beta_ad AFTER DELETE ON config_info_beta FOR EACH ROW
  DELETE FROM nacos.config_info_gray WHERE data_id = OLD.data_id AND group_id = OLD.group_id
    AND tenant_id = OLD.tenant_id AND gray_name = 'beta'//

CREATE OR REPLACE TRIGGER tag_ai AFTER INSERT ON config_info_tag FOR EACH ROW
  INSERT INTO nacos.config_info_gray (data_id, group_id, tenant_id, gray_name, gray_rule, content, md5,
    src_user, src_ip, gmt_create, gmt_modified, app_name, encrypted_data_key)
  VALUES (NEW.data_id, NEW.group_id, NEW.tenant_id, CONCAT('tag_', NEW.tag_id),
    CONCAT('{"type":"tag","version":"1.0.0","expr":', JSON_QUOTE(NEW.tag_id), ',"priority":2147483646}'),
    NEW.content, NEW.md5, NEW.src_user, NEW.src_ip, NEW.gmt_create, NEW.gmt_modified, NEW.app_name, '')
  ON DUPLICATE KEY UPDATE content = VALUES(content), md5 = VALUES(md5), src_user = VALUES(src_user),
    src_ip = VALUES(src_ip), gmt_modified = VALUES(gmt_modified), app_name = VALUES(app_name)//
CREATE OR REPLACE TRIGGER tag_au AFTER UPDATE ON config_info_tag FOR EACH ROW
  INSERT INTO nacos.config_info_gray (data_id, group_id, tenant_id, gray_name, gray_rule, content, md5,
    src_user, src_ip, gmt_create, gmt_modified, app_name, encrypted_data_key)
  VALUES (NEW.data_id, NEW.group_id, NEW.tenant_id, CONCAT('tag_', NEW.tag_id),
    CONCAT('{"type":"tag","version":"1.0.0","expr":', JSON_QUOTE(NEW.tag_id), ',"priority":2147483646}'),
    NEW.content, NEW.md5, NEW.src_user, NEW.src_ip, NEW.gmt_create, NEW.gmt_modified, NEW.app_name, '')
  ON DUPLICATE KEY UPDATE content = VALUES(content), md5 = VALUES(md5), src_user = VALUES(src_user),
    src_ip = VALUES(src_ip), gmt_modified = VALUES(gmt_modified), app_name = VALUES(app_name)//
CREATE OR REPLACE TRIGGER tag_ad AFTER DELETE ON config_info_tag FOR EACH ROW
  DELETE FROM nacos.config_info_gray WHERE data_id = OLD.data_id AND group_id = OLD.group_id
    AND tenant_id = OLD.tenant_id AND gray_name = CONCAT('tag_', OLD.tag_id)//

CREATE OR REPLACE TRIGGER tags_ai AFTER INSERT ON config_tags_relation FOR EACH ROW
  INSERT IGNORE INTO nacos.config_tags_relation (id, tag_name, tag_type, data_id, group_id, tenant_id, nid)
  VALUES (NEW.id, NEW.tag_name, NEW.tag_type, NEW.data_id, NEW.group_id, NEW.tenant_id, NEW.nid)//
CREATE OR REPLACE TRIGGER tags_ad AFTER DELETE ON config_tags_relation FOR EACH ROW
  DELETE FROM nacos.config_tags_relation WHERE nid = OLD.nid//

CREATE OR REPLACE TRIGGER ten_ai AFTER INSERT ON tenant_info FOR EACH ROW
  INSERT INTO nacos.tenant_info (id, kp, tenant_id, tenant_name, tenant_desc, create_source, gmt_create, gmt_modified)
  VALUES (NEW.id, NEW.kp, NEW.tenant_id, NEW.tenant_name, NEW.tenant_desc, NEW.create_source, NEW.gmt_create, NEW.gmt_modified)
  ON DUPLICATE KEY UPDATE tenant_name = VALUES(tenant_name), tenant_desc = VALUES(tenant_desc),
    gmt_modified = VALUES(gmt_modified)//
CREATE OR REPLACE TRIGGER ten_au AFTER UPDATE ON tenant_info FOR EACH ROW
  UPDATE nacos.tenant_info SET tenant_name = NEW.tenant_name, tenant_desc = NEW.tenant_desc,
    gmt_modified = NEW.gmt_modified WHERE kp = OLD.kp AND tenant_id = OLD.tenant_id//
CREATE OR REPLACE TRIGGER ten_ad AFTER DELETE ON tenant_info FOR EACH ROW
  DELETE FROM nacos.tenant_info WHERE kp = OLD.kp AND tenant_id = OLD.tenant_id//

CREATE OR REPLACE TRIGGER usr_ai AFTER INSERT ON users FOR EACH ROW
  INSERT INTO nacos.users (username, password, enabled) VALUES (NEW.username, NEW.password, NEW.enabled)
  ON DUPLICATE KEY UPDATE password = VALUES(password), enabled = VALUES(enabled)//
CREATE OR REPLACE TRIGGER usr_au AFTER UPDATE ON users FOR EACH ROW
  UPDATE nacos.users SET password = NEW.password, enabled = NEW.enabled WHERE username = OLD.username//
CREATE OR REPLACE TRIGGER usr_ad AFTER DELETE ON users FOR EACH ROW
  DELETE FROM nacos.users WHERE username = OLD.username//
CREATE OR REPLACE TRIGGER rol_ai AFTER INSERT ON roles FOR EACH ROW
  INSERT IGNORE INTO nacos.roles (username, role) VALUES (NEW.username, NEW.role)//
CREATE OR REPLACE TRIGGER rol_ad AFTER DELETE ON roles FOR EACH ROW
  DELETE FROM nacos.roles WHERE username = OLD.username AND role = OLD.role//
CREATE OR REPLACE TRIGGER per_ai AFTER INSERT ON permissions FOR EACH ROW
  INSERT IGNORE INTO nacos.permissions (role, resource, action) VALUES (NEW.role, NEW.resource, NEW.action)//
CREATE OR REPLACE TRIGGER per_ad AFTER DELETE ON permissions FOR EACH ROW
  DELETE FROM nacos.permissions WHERE role = OLD.role AND resource = OLD.resource AND action = OLD.action//

DELIMITER ;
