//! The console's words in English and Simplified Chinese. The language comes from
//! `?lang=`, then the `td_lang` cookie, then `Accept-Language`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-Hans",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        let text = text.trim().to_ascii_lowercase();
        if text.starts_with("zh") {
            Some(Lang::Zh)
        } else if text.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first language of `Accept-Language` (by weight) that the console speaks.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut choices: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let lang = Lang::parse(pieces.next()?)?;
                let weight = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((weight, lang))
            })
            .collect();
        choices.sort_by(|a, b| b.0.total_cmp(&a.0));
        choices.first().map_or(Lang::En, |c| c.1)
    }

    /// This language's word for `key`; the key itself if there is none.
    pub fn t(self, key: &'static str) -> &'static str {
        WORDS.iter().find(|w| w.0 == key).map_or(key, |w| if self == Lang::Zh { w.2 } else { w.1 })
    }
}

/// (key, English, Simplified Chinese).
const WORDS: &[(&str, &str, &str)] = &[
    ("console", "Management console", "管理控制台"),
    ("overview", "Overview", "概览"),
    ("terminals", "Terminals", "终端"),
    ("users", "Users", "用户"),
    ("places", "Places", "教室"),
    ("desktops", "Desktops", "桌面"),
    ("catalogue", "Images & flavors", "镜像与规格"),
    ("settings", "Settings", "设置"),
    ("audit", "Audit log", "审计日志"),
    ("logout", "Log out", "退出登录"),
    ("login", "Log in", "登录"),
    ("login_title", "Administrator login", "管理员登录"),
    ("login_hint", "Use an administrator account of this server.", "请使用本服务器的管理员账号登录。"),
    ("user_name", "User name", "用户名"),
    ("password", "Password", "密码"),
    ("signed_in_as", "Signed in as", "当前用户"),
    ("students", "Students", "学生"),
    ("administrators", "Administrators", "管理员"),
    ("pending_terminals", "Terminals waiting for approval", "待审批终端"),
    ("running_vms", "Running machines", "运行中的虚拟机"),
    ("exam_machines", "Exam machines (cloud API)", "考试虚拟机（云接口）"),
    ("recent_activity", "Recent activity", "最近活动"),
    ("nothing_waiting", "No terminal is waiting.", "没有待审批的终端。"),
    ("none_yet", "Nothing here yet.", "暂无内容。"),
    ("all", "All", "全部"),
    ("waiting", "Waiting", "待审批"),
    ("approved", "Approved", "已批准"),
    ("rejected", "Rejected", "已拒绝"),
    ("mac_address", "MAC address", "MAC 地址"),
    ("place", "Place", "教室"),
    ("seat", "Seat", "座位"),
    ("state", "State", "状态"),
    ("registered_by", "Registration mode", "注册模式"),
    ("actions", "Actions", "操作"),
    ("approve", "Approve", "批准"),
    ("reject", "Reject", "拒绝"),
    ("delete", "Delete", "删除"),
    ("move", "Move", "移动"),
    ("name", "Name", "名称"),
    ("role", "Role", "角色"),
    ("created", "Created", "创建时间"),
    ("student", "Student", "学生"),
    ("administrator", "Administrator", "管理员"),
    ("new_user", "New user", "新建用户"),
    ("is_admin", "Administrator", "管理员"),
    ("create", "Create", "创建"),
    ("import_csv", "Import a class from CSV", "从 CSV 导入班级"),
    (
        "csv_help",
        "A header line, then one user per line: name,password[,admin]. If any line is bad, nothing is imported.",
        "第一行为表头，之后每行一个用户：name,password[,admin]。只要有一行有误，就不会导入任何用户。",
    ),
    ("csv_file", "CSV file", "CSV 文件"),
    ("or_paste", "or paste it here", "或在此粘贴"),
    ("import", "Import", "导入"),
    ("new_password", "New password", "新密码"),
    ("reset_password", "Reset password", "重置密码"),
    ("address", "Address", "地址"),
    ("new_place", "New place", "新建教室"),
    ("give_class", "Give a class desktops", "为班级分配桌面"),
    ("image", "Image", "镜像"),
    ("flavor", "Flavor", "规格"),
    ("desktop_name", "Desktop name (default: the image's)", "桌面名称（默认为镜像名）"),
    ("who", "Who", "对象"),
    ("all_students", "Every student (all non-administrators)", "所有学生（全部非管理员）"),
    ("these_users", "These users (one per line or comma-separated)", "以下用户（每行一个或以逗号分隔）"),
    ("give_desktops", "Give desktops", "分配桌面"),
    ("owner", "Owner", "所有者"),
    ("status", "Status", "状态"),
    ("start", "Start", "启动"),
    ("reboot", "Reboot", "重启"),
    ("shutdown", "Shut down", "关机"),
    ("assign", "Give to", "转给"),
    ("destroy", "Destroy", "销毁"),
    ("internet", "Internet", "外网"),
    ("yes", "yes", "是"),
    ("no", "no", "否"),
    ("images", "Images", "镜像"),
    ("flavors", "Flavors", "规格"),
    ("base_disk", "Base disk (absolute path, qcow2)", "基础磁盘（绝对路径，qcow2）"),
    ("connection", "Connection", "连接方式"),
    ("os_username", "OS user", "系统用户"),
    ("os_password", "OS password", "系统密码"),
    ("add", "Add", "添加"),
    ("vcpus", "vCPUs", "vCPU"),
    ("ram_mib", "Memory (MiB)", "内存（MiB）"),
    ("disk_gib", "Disk (GiB)", "磁盘（GiB）"),
    ("registration_mode", "Terminal registration mode", "终端注册模式"),
    ("mode_auto", "auto: new terminals are approved at once", "自动：新终端立即获批"),
    ("mode_approval", "approval: an administrator approves each new terminal", "审批：每台新终端需管理员批准"),
    ("mode_closed", "closed: new terminals are rejected", "关闭：拒绝新终端"),
    ("save", "Save", "保存"),
    ("time", "Time", "时间"),
    ("actor", "Who", "操作者"),
    ("from", "From", "来源"),
    ("action", "Action", "动作"),
    ("target", "Target", "对象"),
    ("detail", "Detail", "详情"),
    ("since", "Since", "起始"),
    ("until", "Until", "截止"),
    ("limit", "At most", "最多"),
    ("filter", "Filter", "筛选"),
    ("done", "Done.", "操作成功。"),
    ("saved", "Saved.", "已保存。"),
    ("bad_login", "Wrong user name or password.", "用户名或密码错误。"),
    ("not_admin", "Only administrators may use the console.", "只有管理员可以使用控制台。"),
    ("throttled", "Too many failed logins; wait and try again in seconds:", "登录失败次数过多，请稍后再试（秒）："),
    ("csrf", "The form expired; please try again.", "表单已过期，请重试。"),
    ("created_n", "Created:", "已创建："),
    ("failed_for", "Failed for", "失败"),
    ("imported", "Imported users:", "已导入用户："),
    ("nothing_imported", "Nothing was imported. Fix these lines:", "未导入任何用户。请修正以下行："),
    ("line", "line", "第几行"),
    ("not_found_page", "No such page.", "页面不存在。"),
    ("language", "中文", "English"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_known_language() {
        assert_eq!(Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("fr-FR,en;q=0.5,zh;q=0.4"), Lang::En);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language("en;q=0.1, zh-Hans;q=0.9"), Lang::Zh);
    }

    #[test]
    fn every_key_has_both_languages() {
        for (key, en, zh) in WORDS {
            assert!(!en.is_empty() && !zh.is_empty(), "{key}");
            assert_eq!(WORDS.iter().filter(|w| w.0 == *key).count(), 1, "{key} twice");
        }
        assert_eq!(Lang::Zh.t("users"), "用户");
    }
}
