//! English and Simplified Chinese. Every string the user sees is a [`T`] key with both
//! translations side by side, so a missing translation is a compile error, not a blank.
//! Texts with values in them use `{}` placeholders filled by [`fill`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh")]
    Zh,
}

impl Lang {
    /// The system's language: Chinese for any `zh*` locale, English otherwise.
    pub fn from_system() -> Self {
        Self::from_locale(sys_locale::get_locale().as_deref().unwrap_or("en"))
    }

    pub fn from_locale(locale: &str) -> Self {
        if locale.to_ascii_lowercase().starts_with("zh") { Self::Zh } else { Self::En }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "en" => Some(Self::En),
            "zh" => Some(Self::Zh),
            _ => None,
        }
    }

    /// The name of the other language, written in that language: what the switch shows.
    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Zh,
            Self::Zh => Self::En,
        }
    }

    pub fn native_name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::Zh => "简体中文",
        }
    }
}

macro_rules! texts {
    ($($key:ident => ($en:expr, $zh:expr),)*) => {
        /// A text the user sees.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($key,)* }

        impl T {
            pub const ALL: &'static [T] = &[$(T::$key,)*];

            pub fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$key, Lang::En) => $en, (T::$key, Lang::Zh) => $zh,)*
                }
            }
        }
    };
}

texts! {
    AppTitle => ("thindesk", "thindesk 云桌面"),
    Language => ("Language", "语言"),
    Settings => ("Settings", "设置"),
    Close => ("Close", "关闭"),
    Cancel => ("Cancel", "取消"),
    Save => ("Save", "保存"),
    Retry => ("Retry", "重试"),
    Starting => ("Contacting the server…", "正在连接服务器…"),
    ServerLabel => ("Server", "服务器"),
    TerminalLabel => ("Terminal", "终端"),
    UnreachableTrying => ("Cannot reach the server at {}: {}. Trying again…", "无法连接服务器 {}：{}。正在重试…"),
    Unreachable => ("Cannot reach the server at {}: {}. Retrying in {} s.", "无法连接服务器 {}：{}。{} 秒后重试。"),
    DemoHint => ("Demo: {} / {}   ·   administrator: {} / {}", "演示：{} / {}　·　管理员：{} / {}"),
    PasswordYouChose => ("(the password you chose)", "（你设置的密码）"),
    ServerTrouble => ("The server has a problem. Try again later, or tell your teacher.", "服务器出现问题。请稍后再试，或告诉老师。"),
    Forbidden => ("Your account may not do this.", "你的账号无权执行此操作。"),
    NotFoundHere => ("The server does not know this desktop any more.", "服务器上已找不到此桌面。"),
    ProtocolTrouble => ("The server answered in a way this client does not understand: it may need an update.", "服务器的回答无法识别，客户端可能需要更新。"),
    ReasonRefused => ("nothing answers there", "该地址无人应答"),
    ReasonTimeout => ("no answer in time", "等待应答超时"),
    ReasonName => ("the server's name is unknown", "无法识别服务器名称"),
    ReasonOther => ("the network does not reach it", "网络无法到达"),
    FieldRequired => ("{} is required.", "请填写{}。"),
    SeatInvalid => ("The seat number must be 1 to {} letters or digits.", "座位号须为 1 到 {} 个字母或数字。"),
    PlaceInvalid => ("Pick a classroom from the list.", "请从列表中选择课室。"),
    PasswordTooShort => ("The new password is too short: use at least {} characters.", "新密码太短：至少需要 {} 个字符。"),
    PasswordTooLong => ("The new password is too long.", "新密码太长。"),
    CurrentPasswordNeeded => ("The server wants the current password for this.", "此操作需要当前密码。"),
    MacRefused => ("The server does not accept this terminal's network address.", "服务器不接受此终端的网络地址。"),
    FieldRefused => ("The server did not accept the form.", "服务器未接受所填内容。"),
    // registration
    RegisterTitle => ("Register this terminal", "注册此终端"),
    RegisterIntro => (
        "This terminal is not registered yet. Pick its classroom and seat; an administrator may then approve it.",
        "此终端尚未注册。请选择所在课室和座位号，然后等待管理员批准。"
    ),
    Place => ("Classroom", "课室"),
    PickPlace => ("Choose a classroom", "选择课室"),
    SeatNumber => ("Seat number", "座位号"),
    AsAdmin => ("Register as administrator (approved at once)", "以管理员身份注册（立即通过）"),
    AdminName => ("Administrator name", "管理员用户名"),
    AdminPassword => ("Administrator password", "管理员密码"),
    Register => ("Register", "注册"),
    Registering => ("Registering…", "正在注册…"),
    TerminalExisted => ("This terminal is already registered.", "此终端已经注册。"),
    SeatTaken => ("That seat in that classroom is already taken by another terminal.", "该课室的这个座位号已被其他终端使用。"),
    AdminRefused => ("The administrator name or password is wrong.", "管理员用户名或密码错误。"),
    NotAdmin => ("That account is not an administrator.", "该账号不是管理员。"),
    NoPlaces => ("The server has no classrooms yet: ask an administrator to add one.", "服务器上还没有课室，请联系管理员添加。"),
    // the server's certificate
    TrustTitle => ("Is this your school's server?", "这是学校的服务器吗？"),
    TrustBody => (
        "This terminal has not talked to {} before. Compare the fingerprint below with the one the administrator's console shows on its home page. Trust the server only if every character is the same: until then nothing is sent to it.",
        "本终端此前从未连接过 {}。请将下面的指纹与管理员控制台首页显示的指纹逐字核对，完全一致时才信任此服务器；在此之前不会向它发送任何信息。"
    ),
    FingerprintLabel => ("Certificate fingerprint (SHA-256):", "证书指纹（SHA-256）："),
    TrustButton => ("Trust this server", "信任此服务器"),
    ChangedTitle => ("The server's certificate has changed", "服务器证书已更改"),
    ChangedBody => (
        "Something other than the server this terminal trusts answers at {}. It may be someone on the network pretending to be the server. Nothing was sent to it, and no one can log in at this terminal until this is cleared up.",
        "在 {} 应答的不是本终端信任的服务器，可能是网络上有人冒充服务器。本终端没有向它发送任何信息，问题解决之前本终端不能登录。"
    ),
    PinnedLabel => ("Expected:", "应为："),
    PresentedLabel => ("Presented:", "实际为："),
    ChangedAdmin => (
        "Tell the administrator. If they replaced the certificate, they put the new fingerprint in this terminal's settings.",
        "请告知管理员。如果管理员更换了证书，请由管理员在本终端的设置中填入新的指纹。"
    ),
    // waiting / rejected
    WaitingTitle => ("Waiting for approval", "等待审批"),
    WaitingBody => (
        "This terminal ({}, seat {}) is registered and waits for an administrator to approve it. This screen moves on by itself.",
        "此终端（{}，座位 {}）已提交注册，正在等待管理员审批。批准后将自动进入登录界面。"
    ),
    RejectedTitle => ("Registration rejected", "注册被拒绝"),
    RejectedBody => (
        "The administrator rejected this terminal ({}, seat {}). Ask the administrator to approve it or to delete its registration so it can register again.",
        "管理员拒绝了此终端（{}，座位 {}）的注册。请联系管理员批准，或删除其注册记录以便重新注册。"
    ),
    CheckAgain => ("Check again", "重新检查"),
    // login
    LoginTitle => ("Log in", "登录"),
    SeatInfo => ("Classroom {} · seat {}", "课室 {} · 座位 {}"),
    UserName => ("User name", "用户名"),
    Password => ("Password", "密码"),
    LogIn => ("Log in", "登录"),
    LoggingIn => ("Logging in…", "正在登录…"),
    WrongPassword => ("Wrong user name or password.", "用户名或密码错误。"),
    Throttled => ("Too many failed attempts. Try again in {} s.", "失败次数过多，请在 {} 秒后重试。"),
    NotRemembering => ("No keyring service here: the user name will not be remembered.", "此处没有密钥环服务：将不会记住用户名。"),
    // desktops
    DesktopsTitle => ("Your desktops", "我的桌面"),
    SignedInAs => ("Signed in as {}", "当前用户：{}"),
    NoDesktops => ("You have no desktops. Ask your teacher or administrator.", "你还没有桌面，请联系老师或管理员。"),
    Refresh => ("Refresh", "刷新"),
    Connect => ("Connect", "连接"),
    Start => ("Start", "开机"),
    Resume => ("Resume", "唤醒"),
    Reboot => ("Reboot", "重启"),
    Shutdown => ("Shut down", "关机"),
    SaveFile => ("Save connection file…", "保存连接文件…"),
    ConfirmReboot => ("Restart {}? Unsaved work in it will be lost.", "确定要重启 {} 吗？未保存的工作将会丢失。"),
    ConfirmShutdown => ("Shut down {}? Unsaved work in it will be lost.", "确定要关闭 {} 吗？未保存的工作将会丢失。"),
    Working => ("Working…", "处理中…"),
    ActionDone => ("{} · {}: done.", "{} · {}：已完成。"),
    ActionBusy => ("Another action on this desktop is under way; wait a moment.", "此桌面正在执行其他操作，请稍候。"),
    NoDisplay => ("This desktop has no display to connect to yet: start it first.", "此桌面暂时无法连接，请先开机。"),
    Status => ("Status", "状态"),
    StatusActive => ("Running", "运行中"),
    StatusStarting => ("Starting…", "正在启动…"),
    DesktopSize => ("{} CPU · {} GB memory · {} GB disk", "{} 核处理器 · {} GB 内存 · {} GB 硬盘"),
    StatusShutoff => ("Off", "已关机"),
    StatusSuspended => ("Suspended", "已挂起"),
    StatusPaused => ("Paused", "已暂停"),
    StatusBuild => ("Being built", "创建中"),
    StatusReboot => ("Rebooting", "重启中"),
    StatusError => ("Error", "错误"),
    ChangePassword => ("Change password", "修改密码"),
    CurrentPassword => ("Current password", "当前密码"),
    WrongCurrentPassword => ("The current password is wrong.", "当前密码不正确。"),
    NewPassword => ("New password", "新密码"),
    RepeatPassword => ("Repeat new password", "再次输入新密码"),
    PasswordsDiffer => ("The two passwords differ.", "两次输入的密码不一致。"),
    PasswordChanged => ("Password changed.", "密码已修改。"),
    LogOut => ("Log out", "退出登录"),
    SessionExpired => ("Your session has ended; please log in again.", "登录已失效，请重新登录。"),
    // sessions
    SessionOpen => ("{} is open in the viewer.", "{} 已在查看器中打开。"),
    SessionHint => ("Close the viewer window to come back here.", "关闭查看器窗口即可返回此处。"),
    ViewerCouldNotConnect => (
        "{} could not be opened: the viewer could not connect to it. Try again in a moment, or ask your teacher.",
        "无法打开 {}：查看器连接不上它。请稍后再试，或请老师帮忙。"
    ),
    DesktopCertificateChanged => (
        "{} was not opened: it did not show the same security certificate as the last time this computer connected to it, so it may not be your desktop. Do not try again; ask your teacher for help.",
        "没有打开 {}：它出示的安全证书与这台电脑上次连接时不同，可能不是你的桌面。请不要再试，请找老师帮忙。"
    ),
    NotRunningNow => ("{} is not running any more: start it first.", "{} 已不在运行，请先开机。"),
    SessionEnded => ("The session with {} ended.", "与 {} 的会话已结束。"),
    ConnectionLost => (
        "The connection to {} was lost. It opens again by itself as soon as the server answers.",
        "与 {} 的连接已中断。服务器恢复应答后将自动重新连接。"
    ),
    Reconnecting => ("Reconnecting to {}…", "正在重新连接 {}…"),
    ViewerMissing => ("The viewer program {} is not installed (or not found). Ask the administrator.", "找不到查看器程序 {}，请联系管理员。"),
    ViewerFailed => ("The viewer could not be started: {}", "无法启动查看器：{}"),
    // settings
    SpiceViewer => ("SPICE viewer program", "SPICE 查看器程序"),
    RdpViewer => ("RDP viewer program", "RDP 查看器程序"),
    Choose => ("Choose…", "选择…"),
    SaveFileWarning => (
        "The file holds this desktop's password or ticket: anyone with the file can open the desktop. Keep it private and delete it after use.",
        "该文件包含此桌面的密码或票据，任何拿到文件的人都能打开此桌面。请妥善保管，用后删除。"
    ),
    FileSaved => ("Saved {}", "已保存 {}"),
    KioskNote => ("Kiosk mode: this window cannot be closed.", "展台模式：此窗口不能关闭。"),
}

/// Something to tell the user, kept as text keys (not as a finished string) so that it
/// follows a language switch. Values from outside (names, server messages) are `Raw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    Text(T, Vec<Said>),
    Raw(String),
}

impl Said {
    pub fn with(text: T, args: &[&str]) -> Self {
        Self::Text(text, args.iter().map(|a| Self::Raw((*a).to_owned())).collect())
    }

    pub fn show(&self, lang: Lang) -> String {
        match self {
            Self::Raw(text) => text.clone(),
            Self::Text(text, args) => {
                let args: Vec<String> = args.iter().map(|a| a.show(lang)).collect();
                fill(text.get(lang), &args.iter().map(String::as_str).collect::<Vec<_>>())
            }
        }
    }
}

impl From<T> for Said {
    fn from(text: T) -> Self {
        Self::Text(text, Vec::new())
    }
}

/// Replaces each `{}` in `template` with the next of `values`.
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        out.push_str(values.next().copied().unwrap_or(""));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_the_same_placeholders() {
        for text in T::ALL {
            let (en, zh) = (text.get(Lang::En), text.get(Lang::Zh));
            assert!(!en.is_empty() && !zh.is_empty(), "{text:?}");
            assert_eq!(en.matches("{}").count(), zh.matches("{}").count(), "{text:?}");
        }
    }

    #[test]
    fn locale_picks_chinese_only_for_zh() {
        assert_eq!(Lang::from_locale("zh-CN"), Lang::Zh);
        assert_eq!(Lang::from_locale("zh_TW.UTF-8"), Lang::Zh);
        assert_eq!(Lang::from_locale("en-US"), Lang::En);
        assert_eq!(Lang::from_locale("de"), Lang::En);
    }

    #[test]
    fn fill_replaces_in_order() {
        assert_eq!(fill("{} and {}", &["a", "b"]), "a and b");
        assert_eq!(fill("no holes", &["x"]), "no holes");
    }
}
