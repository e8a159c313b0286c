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

    /// This language's words for `text`.
    pub fn t(self, text: Text) -> &'static str {
        let (en, zh) = text.words();
        if self == Lang::Zh { zh } else { en }
    }
}

/// Every text of the console. A text without both languages does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    NewTicket,
    Console,
    Overview,
    Terminals,
    Users,
    Places,
    Desktops,
    Catalogue,
    Settings,
    Audit,
    Logout,
    Login,
    LoginTitle,
    LoginHint,
    UserName,
    Password,
    SignedInAs,
    Students,
    Administrators,
    PendingTerminals,
    RunningVms,
    ExamMachines,
    RecentActivity,
    ServerCertificate,
    ServerCertificateHint,
    NothingWaiting,
    NoneYet,
    All,
    Waiting,
    Approved,
    Rejected,
    MacAddress,
    Place,
    Seat,
    State,
    RegisteredBy,
    Actions,
    Approve,
    Reject,
    Delete,
    Move,
    Name,
    Role,
    Created,
    Student,
    Administrator,
    NewUser,
    IsAdmin,
    Create,
    ImportCsv,
    CsvHelp,
    CsvFile,
    OrPaste,
    Import,
    NewPassword,
    ResetPassword,
    Address,
    NewPlace,
    GiveClass,
    Image,
    Flavor,
    DesktopName,
    Who,
    AllStudents,
    TheseUsers,
    GiveDesktops,
    Owner,
    Status,
    Start,
    Reboot,
    Shutdown,
    Assign,
    Destroy,
    Internet,
    Yes,
    No,
    Images,
    Flavors,
    BaseDisk,
    LivesIn,
    CatalogueFollowsPlatform,
    Connection,
    OsUsername,
    OsPassword,
    GuestAgent,
    HasGuestAgent,
    OwnOsPasswords,
    SharedOsPassword,
    Add,
    Vcpus,
    RamMib,
    DiskGib,
    RegistrationMode,
    ModeAuto,
    ModeApproval,
    ModeClosed,
    Save,
    Time,
    Actor,
    From,
    Action,
    Target,
    Detail,
    Since,
    Until,
    Limit,
    Filter,
    Done,
    Saved,
    BadLogin,
    NotAdmin,
    Throttled,
    Csrf,
    CreatedN,
    FailedFor,
    Imported,
    NothingImported,
    Line,
    NotFoundPage,
    Language,
}

impl Text {
    /// (English, Simplified Chinese).
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Text::NewTicket => ("New ticket", "更换票据"),
            Text::Console => ("Management console", "管理控制台"),
            Text::Overview => ("Overview", "概览"),
            Text::Terminals => ("Terminals", "终端"),
            Text::Users => ("Users", "用户"),
            Text::Places => ("Places", "教室"),
            Text::Desktops => ("Desktops", "桌面"),
            Text::Catalogue => ("Images & flavors", "镜像与规格"),
            Text::Settings => ("Settings", "设置"),
            Text::Audit => ("Audit log", "审计日志"),
            Text::Logout => ("Log out", "退出登录"),
            Text::Login => ("Log in", "登录"),
            Text::LoginTitle => ("Administrator login", "管理员登录"),
            Text::LoginHint => ("Use an administrator account of this server.", "请使用本服务器的管理员账号登录。"),
            Text::UserName => ("User name", "用户名"),
            Text::Password => ("Password", "密码"),
            Text::SignedInAs => ("Signed in as", "当前用户"),
            Text::Students => ("Students", "学生"),
            Text::Administrators => ("Administrators", "管理员"),
            Text::PendingTerminals => ("Terminals waiting for approval", "待审批终端"),
            Text::RunningVms => ("Running machines", "运行中的虚拟机"),
            Text::ExamMachines => ("Exam machines (cloud API)", "考试虚拟机（云接口）"),
            Text::RecentActivity => ("Recent activity", "最近活动"),
            Text::ServerCertificate => ("Server certificate (SHA-256)", "服务器证书（SHA-256）"),
            Text::ServerCertificateHint => (
                "A terminal shows this fingerprint the first time it connects: it must be the same, character for character. To set up terminals without asking, put it in their settings file as server_fingerprint.",
                "终端首次连接时会显示此指纹，必须逐字一致。若要让终端无需询问，请将其写入终端设置文件的 server_fingerprint。",
            ),
            Text::NothingWaiting => ("No terminal is waiting.", "没有待审批的终端。"),
            Text::NoneYet => ("Nothing here yet.", "暂无内容。"),
            Text::All => ("All", "全部"),
            Text::Waiting => ("Waiting", "待审批"),
            Text::Approved => ("Approved", "已批准"),
            Text::Rejected => ("Rejected", "已拒绝"),
            Text::MacAddress => ("MAC address", "MAC 地址"),
            Text::Place => ("Place", "教室"),
            Text::Seat => ("Seat", "座位"),
            Text::State => ("State", "状态"),
            Text::RegisteredBy => ("Registration mode", "注册模式"),
            Text::Actions => ("Actions", "操作"),
            Text::Approve => ("Approve", "批准"),
            Text::Reject => ("Reject", "拒绝"),
            Text::Delete => ("Delete", "删除"),
            Text::Move => ("Move", "移动"),
            Text::Name => ("Name", "名称"),
            Text::Role => ("Role", "角色"),
            Text::Created => ("Created", "创建时间"),
            Text::Student => ("Student", "学生"),
            Text::Administrator => ("Administrator", "管理员"),
            Text::NewUser => ("New user", "新建用户"),
            Text::IsAdmin => ("Administrator", "管理员"),
            Text::Create => ("Create", "创建"),
            Text::ImportCsv => ("Import a class from CSV", "从 CSV 导入班级"),
            Text::CsvHelp => (
                "A header line, then one user per line: name,password[,admin]. If any line is bad, nothing is imported.",
                "第一行为表头，之后每行一个用户：name,password[,admin]。只要有一行有误，就不会导入任何用户。",
            ),
            Text::CsvFile => ("CSV file", "CSV 文件"),
            Text::OrPaste => ("or paste it here", "或在此粘贴"),
            Text::Import => ("Import", "导入"),
            Text::NewPassword => ("New password", "新密码"),
            Text::ResetPassword => ("Reset password", "重置密码"),
            Text::Address => ("Address", "地址"),
            Text::NewPlace => ("New place", "新建教室"),
            Text::GiveClass => ("Give a class desktops", "为班级分配桌面"),
            Text::Image => ("Image", "镜像"),
            Text::Flavor => ("Flavor", "规格"),
            Text::DesktopName => ("Desktop name (default: the image's)", "桌面名称（默认为镜像名）"),
            Text::Who => ("Who", "对象"),
            Text::AllStudents => ("Every student (all non-administrators)", "所有学生（全部非管理员）"),
            Text::TheseUsers => ("These users (one per line or comma-separated)", "以下用户（每行一个或以逗号分隔）"),
            Text::GiveDesktops => ("Give desktops", "分配桌面"),
            Text::Owner => ("Owner", "所有者"),
            Text::Status => ("Status", "状态"),
            Text::Start => ("Start", "启动"),
            Text::Reboot => ("Reboot", "重启"),
            Text::Shutdown => ("Shut down", "关机"),
            Text::Assign => ("Give to", "转给"),
            Text::Destroy => ("Destroy", "销毁"),
            Text::Internet => ("Internet", "外网"),
            Text::Yes => ("yes", "是"),
            Text::No => ("no", "否"),
            Text::Images => ("Images", "镜像"),
            Text::Flavors => ("Flavors", "规格"),
            Text::BaseDisk => ("Base disk (absolute path, qcow2)", "基础磁盘（绝对路径，qcow2）"),
            Text::LivesIn => ("Lives in", "所在位置"),
            Text::CatalogueFollowsPlatform => (
                "Images and flavors are the cloud's own (Glance, Nova), read again every minute: add or remove them there.",
                "镜像和规格来自云平台（Glance、Nova），每分钟重新读取一次：请在云平台中添加或删除。",
            ),
            Text::Connection => ("Connection", "连接方式"),
            Text::OsUsername => ("OS user", "系统用户"),
            Text::OsPassword => ("OS password", "系统密码"),
            Text::GuestAgent => ("Guest agent", "客户机代理"),
            Text::HasGuestAgent => ("Runs the QEMU guest agent", "运行 QEMU 客户机代理"),
            Text::OwnOsPasswords => ("yes: own OS password per desktop", "有：每个桌面各有系统密码"),
            Text::SharedOsPassword => ("none: desktops share its OS password", "无：桌面共用其系统密码"),
            Text::Add => ("Add", "添加"),
            Text::Vcpus => ("vCPUs", "vCPU"),
            Text::RamMib => ("Memory (MiB)", "内存（MiB）"),
            Text::DiskGib => ("Disk (GiB)", "磁盘（GiB）"),
            Text::RegistrationMode => ("Terminal registration mode", "终端注册模式"),
            Text::ModeAuto => ("auto: new terminals are approved at once", "自动：新终端立即获批"),
            Text::ModeApproval => {
                ("approval: an administrator approves each new terminal", "审批：每台新终端需管理员批准")
            }
            Text::ModeClosed => ("closed: new terminals are rejected", "关闭：拒绝新终端"),
            Text::Save => ("Save", "保存"),
            Text::Time => ("Time", "时间"),
            Text::Actor => ("Who", "操作者"),
            Text::From => ("From", "来源"),
            Text::Action => ("Action", "动作"),
            Text::Target => ("Target", "对象"),
            Text::Detail => ("Detail", "详情"),
            Text::Since => ("Since", "起始"),
            Text::Until => ("Until", "截止"),
            Text::Limit => ("At most", "最多"),
            Text::Filter => ("Filter", "筛选"),
            Text::Done => ("Done.", "操作成功。"),
            Text::Saved => ("Saved.", "已保存。"),
            Text::BadLogin => ("Wrong user name or password.", "用户名或密码错误。"),
            Text::NotAdmin => ("Only administrators may use the console.", "只有管理员可以使用控制台。"),
            Text::Throttled => {
                ("Too many failed logins; wait and try again in seconds:", "登录失败次数过多，请稍后再试（秒）：")
            }
            Text::Csrf => ("The form expired; please try again.", "表单已过期，请重试。"),
            Text::CreatedN => ("Created:", "已创建："),
            Text::FailedFor => ("Failed for", "失败"),
            Text::Imported => ("Imported users:", "已导入用户："),
            Text::NothingImported => ("Nothing was imported. Fix these lines:", "未导入任何用户。请修正以下行："),
            Text::Line => ("line", "第几行"),
            Text::NotFoundPage => ("No such page.", "页面不存在。"),
            Text::Language => ("中文", "English"),
        }
    }
}

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
    fn texts_read_in_each_language() {
        assert_eq!(Lang::Zh.t(Text::Users), "用户");
        assert_eq!(Lang::En.t(Text::Users), "Users");
    }
}
